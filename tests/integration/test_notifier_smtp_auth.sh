#!/usr/bin/env bash
# E-mail through an SMTP server that requires AUTH: a second maildev started
# with --incoming-user/--incoming-pass. With SMTP_USER/SMTP_PASSWORD the
# notifier logs in and the mail arrives; with a wrong password the server
# refuses the login (535, then 530 "authentication required" for the mail):
# that is the operator's to fix, not the message's fault, so the row waits on
# the retry ladder saying what to check, and nothing is lost.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/bot_lib.sh
. "$(dirname "$0")/bot_lib.sh"
# shellcheck source=tests/integration/ntf_lib.sh
. "$(dirname "$0")/ntf_lib.sh"

vn_load_env
trap vn_ntf_cleanup EXIT
vn_ntf_db
maildev="$VN_SOURCE_DIR/.tools/node_modules/.bin/maildev"
[[ -x "$maildev" ]] || vn_fail "maildev is not installed ($maildev); run scripts/deps"

smtp_port="$(vn_free_port)"
web_port="$(vn_free_port)"
"$maildev" --ip 127.0.0.1 --smtp "$smtp_port" --web "$web_port" --incoming-user vestnik \
	--incoming-pass 's3cret pass' >"$VN_TMP/maildev.log" 2>&1 </dev/null &
VN__PIDS+=("$!")
VN__LOGS+=("$VN_TMP/maildev.log")
mail_api="http://127.0.0.1:$web_port"
for _ in $(seq 1 100); do
	curl -fs -o /dev/null -m 1 "$mail_api/email" && break
	sleep 0.1
done
curl -fs -o /dev/null -m 1 "$mail_api/email" || vn_fail "maildev with AUTH did not start: $(cat "$VN_TMP/maildev.log")"
vn_ok "an SMTP server that requires AUTH (maildev on $smtp_port)"

vn_start_fake
vn_ntf_env
MAIL_API_URL="$mail_api"
u="auth-$VN_RUN_ID" to="auth-$VN_RUN_ID@example.com"

SMTP_HOST=127.0.0.1 SMTP_PORT="$smtp_port" SMTP_USER=vestnik SMTP_PASSWORD='s3cret pass' \
	vn_start_vestnik "$VN_TMP/notifier1.log" notifier
vn_wait_for 200 GET /readyz 20 || vn_fail "the notifier is not ready: $VN_BODY"
vn_api PUT "/v1/users/$u" "{\"email\":\"$to\",\"preferences\":{\"channels\":{\"*\":[\"email\"]}}}"
vn_assert_eq "$VN_STATUS" 201 "a user who wants e-mail"
id="$(vn_send notification.requested --to "user:$u" --data '{"title":"Logged in"}')"
vn_wait_rows "$id" "$u:email:sent" 15 || vn_fail "the mail was not sent with AUTH"
vn_wait_mail "$to" 1 10 || vn_fail "the mail did not arrive"
vn_ok "with SMTP_USER and SMTP_PASSWORD the notifier logs in and the mail arrives"
vn_assert_eq "$(vn_json 'j["subject"]' "$(vn_mail_last "$to")")" "Logged in" "... with its subject"
vn_stop_vestnik || vn_fail "the notifier did not stop cleanly"

SMTP_HOST=127.0.0.1 SMTP_PORT="$smtp_port" SMTP_USER=vestnik SMTP_PASSWORD='Wr0ng-Passw0rd' \
	vn_start_vestnik "$VN_TMP/notifier2.log" notifier
vn_wait_for 200 GET /readyz 20 || vn_fail "the notifier is not ready: $VN_BODY"
id2="$(vn_send notification.requested --to "user:$u" --data '{"title":"Refused"}')"
vn_wait_rows "$id2" "$u:email:retrying" 15 || { vn_api GET "/v1/notifications/$id2"; vn_fail "a refused login did not make the row wait for a retry: $VN_BODY"; }
vn_api GET "/v1/notifications/$id2"
vn_assert_contains "$(vn_json 'j["deliveries"][0]["last_error"]')" "check SMTP_USER and SMTP_PASSWORD" \
	"the row says why and what to check"
vn_assert_eq "$(vn_mail_count "$to")" 1 "nothing more arrived"
grep -q "s3cret\|Wr0ng-Passw0rd" "$VN_TMP/notifier1.log" "$VN_TMP/notifier2.log" &&
	vn_fail "a password appears in the notifier's log"
vn_ok "the password is never logged"
vn_done
