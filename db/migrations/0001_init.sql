-- 0001_init.sql - the first schema.
--
--   bot     who the users are: their Telegram links and notification preferences
--   notify  what happened and what was sent: events, deliveries, reminders
--
-- Runs in one transaction (the migrator wraps every file). Never edit this
-- file once it has been applied anywhere: add 0002_... instead (docs/database.md).

CREATE SCHEMA bot;
COMMENT ON SCHEMA bot IS
    'Bot side: users, their Telegram links and their notification preferences.';

CREATE SCHEMA notify;
COMMENT ON SCHEMA notify IS
    'Notifier side: events received, one delivery row per (event, user, channel), reminders.';

-- Keeps updated_at honest whatever the UPDATE forgot to set.
CREATE FUNCTION public.vn_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION public.vn_set_updated_at() IS
    'BEFORE UPDATE trigger: sets updated_at to the transaction time.';

-- True when m maps keys (event types, or "*" for any) to arrays of known
-- channel names, e.g. {"task.due": ["telegram", "email"], "*": ["email"]}.
-- CASE fixes the order: the strict element walk would fail on a non-array.
CREATE FUNCTION bot.valid_channel_map(m jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_typeof(m) <> 'object' THEN false
        WHEN jsonb_path_exists(m, 'strict $.* ? (@.type() != "array")') THEN false
        ELSE NOT jsonb_path_exists(m,
            'strict $.*[*] ? (!(@.type() == "string" && '
            '(@ == "telegram" || @ == "email" || @ == "websocket")))')
    END
$$;
COMMENT ON FUNCTION bot.valid_channel_map(jsonb) IS
    'Check for bot.preferences.channels: an object of arrays of telegram/email/websocket.';

-- ---------------------------------------------------------------- bot

CREATE TABLE bot.users (
    id           text PRIMARY KEY,
    email        text,
    display_name text,
    locale       text NOT NULL DEFAULT 'en',
    time_zone    text NOT NULL DEFAULT 'UTC',
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$'),
    CONSTRAINT users_email_format
        CHECK (email IS NULL OR (length(email) <= 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$')),
    CONSTRAINT users_display_name_length
        CHECK (display_name IS NULL OR length(display_name) BETWEEN 1 AND 200),
    CONSTRAINT users_locale_format CHECK (locale ~ '^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$'),
    -- AT TIME ZONE rejects unknown zones ("time zone ... not recognized").
    CONSTRAINT users_time_zone_known
        CHECK ((TIMESTAMPTZ '2000-01-01 00:00:00+00' AT TIME ZONE time_zone) IS NOT NULL)
);
COMMENT ON TABLE bot.users IS
    'People the bot serves, keyed by the publishing service''s own user id (PUT /v1/users/{id}).';
COMMENT ON COLUMN bot.users.id IS
    'The service''s user id, as in event recipients: 1-128 of [A-Za-z0-9._:@+-], starting alphanumeric.';
COMMENT ON COLUMN bot.users.locale IS 'Language for templates (BCP 47 like en, pt-BR); falls back to en.';
COMMENT ON COLUMN bot.users.time_zone IS 'IANA time zone (Europe/Berlin) for quiet hours and dates.';
COMMENT ON COLUMN bot.users.active IS 'false: nothing is delivered to this user on any channel.';

CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON bot.users
    FOR EACH ROW EXECUTE FUNCTION public.vn_set_updated_at();

CREATE TABLE bot.telegram_links (
    telegram_user_id bigint PRIMARY KEY,
    user_id          text NOT NULL REFERENCES bot.users (id) ON DELETE CASCADE,
    chat_id          bigint NOT NULL,
    username         text,
    active           boolean NOT NULL DEFAULT true,
    linked_at        timestamptz NOT NULL DEFAULT now(),
    blocked_at       timestamptz,
    CONSTRAINT telegram_links_username_length
        CHECK (username IS NULL OR length(username) BETWEEN 1 AND 64)
);
CREATE INDEX telegram_links_user_id_idx ON bot.telegram_links (user_id);
COMMENT ON TABLE bot.telegram_links IS
    'Telegram accounts linked to users. A Telegram account belongs to one user at a time '
    '(primary key); a user may link several.';
COMMENT ON COLUMN bot.telegram_links.chat_id IS 'Private chat the bot writes to (sendMessage chat_id).';
COMMENT ON COLUMN bot.telegram_links.active IS
    'false after the user blocked the bot (403) or unlinked; delivery falls back to the next channel.';
COMMENT ON COLUMN bot.telegram_links.blocked_at IS 'When the Bot API last answered 403 blocked.';

CREATE TABLE bot.preferences (
    user_id           text PRIMARY KEY REFERENCES bot.users (id) ON DELETE CASCADE,
    channels          jsonb NOT NULL DEFAULT '{}',
    quiet_hours_start time,
    quiet_hours_end   time,
    fallback_order    text[] NOT NULL DEFAULT '{telegram,email}',
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT preferences_channels_valid CHECK (bot.valid_channel_map(channels)),
    CONSTRAINT preferences_quiet_hours_pair
        CHECK ((quiet_hours_start IS NULL) = (quiet_hours_end IS NULL)),
    CONSTRAINT preferences_quiet_hours_nonempty CHECK (quiet_hours_start <> quiet_hours_end),
    CONSTRAINT preferences_fallback_known
        CHECK (fallback_order <@ ARRAY['telegram', 'email', 'websocket']::text[]
               AND array_position(fallback_order, NULL) IS NULL)
);
COMMENT ON TABLE bot.preferences IS
    'How a user wants to be reached. No row means the defaults of this table.';
COMMENT ON COLUMN bot.preferences.channels IS
    'Channels per event type: {"task.due": ["telegram"], "*": ["email"]}; "*" is the default, '
    'a missing type uses "*", an empty array mutes that type.';
COMMENT ON COLUMN bot.preferences.quiet_hours_start IS
    'Local time (users.time_zone) from which non-critical messages wait; may be later than '
    'quiet_hours_end, meaning the window spans midnight. Both NULL: no quiet hours.';
COMMENT ON COLUMN bot.preferences.fallback_order IS
    'Channels tried in order when one fails for good (blocked bot, 5xx SMTP).';

CREATE TRIGGER preferences_set_updated_at BEFORE UPDATE ON bot.preferences
    FOR EACH ROW EXECUTE FUNCTION public.vn_set_updated_at();

-- ---------------------------------------------------------------- notify

CREATE TABLE notify.events (
    id          uuid PRIMARY KEY,
    type        text NOT NULL,
    version     integer NOT NULL,
    source      text NOT NULL,
    occurred_at timestamptz NOT NULL,
    deliver_at  timestamptz,
    priority    text NOT NULL DEFAULT 'normal',
    dedup_key   text UNIQUE,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_type_format CHECK (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    CONSTRAINT events_version_positive CHECK (version >= 1),
    CONSTRAINT events_source_length CHECK (length(source) BETWEEN 1 AND 200),
    CONSTRAINT events_priority_known CHECK (priority IN ('low', 'normal', 'high', 'critical')),
    CONSTRAINT events_dedup_key_length CHECK (dedup_key IS NULL OR length(dedup_key) BETWEEN 1 AND 200),
    CONSTRAINT events_payload_object CHECK (jsonb_typeof(payload) = 'object')
);
COMMENT ON TABLE notify.events IS
    'Every accepted event envelope (docs/asyncapi.yaml), once: a redelivered message finds its row.';
COMMENT ON COLUMN notify.events.type IS 'Dotted event type: task.assigned, reminder.scheduled, ...';
COMMENT ON COLUMN notify.events.version IS 'Envelope schema version of this type.';
COMMENT ON COLUMN notify.events.deliver_at IS 'Not before this time; NULL means now.';
COMMENT ON COLUMN notify.events.dedup_key IS
    'Publisher-chosen key: a second event with the same key is dropped as a duplicate. '
    'Unique across all sources, so publishers should prefix it with their name.';
COMMENT ON COLUMN notify.events.payload IS 'The envelope as received (a JSON object).';

CREATE TABLE notify.deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES notify.events (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    channel         text NOT NULL,
    state           text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    CONSTRAINT deliveries_event_user_channel_key UNIQUE (event_id, user_id, channel),
    CONSTRAINT deliveries_channel_known CHECK (channel IN ('telegram', 'email', 'websocket')),
    CONSTRAINT deliveries_state_known
        CHECK (state IN ('pending', 'sent', 'retrying', 'failed', 'skipped')),
    CONSTRAINT deliveries_attempts_nonnegative CHECK (attempts >= 0),
    CONSTRAINT deliveries_due_when_waiting
        CHECK (state NOT IN ('pending', 'retrying') OR next_attempt_at IS NOT NULL),
    CONSTRAINT deliveries_sent_at_when_sent CHECK (state <> 'sent' OR sent_at IS NOT NULL)
);
CREATE INDEX deliveries_state_next_attempt_idx ON notify.deliveries (state, next_attempt_at);
COMMENT ON TABLE notify.deliveries IS
    'One row per (event, recipient, channel): the UNIQUE key makes a redelivered event '
    'find its rows instead of sending twice.';
COMMENT ON COLUMN notify.deliveries.user_id IS
    'bot.users.id of the recipient; no foreign key, so the log outlives users and records '
    'events for unknown recipients (state skipped).';
COMMENT ON COLUMN notify.deliveries.state IS
    'pending (waiting, e.g. for quiet hours to end), retrying (failed, will retry), '
    'sent, failed (final), skipped (not sent by choice: muted, unknown or inactive user).';
COMMENT ON COLUMN notify.deliveries.next_attempt_at IS
    'When pending or retrying rows are due; the (state, next_attempt_at) index finds them.';
COMMENT ON COLUMN notify.deliveries.last_error IS 'Last failure, short and without message bodies.';

CREATE TRIGGER deliveries_set_updated_at BEFORE UPDATE ON notify.deliveries
    FOR EACH ROW EXECUTE FUNCTION public.vn_set_updated_at();

CREATE TABLE notify.reminders (
    id           text PRIMARY KEY,
    user_id      text NOT NULL,
    event_id     uuid REFERENCES notify.events (id) ON DELETE SET NULL,
    deliver_at   timestamptz NOT NULL,
    state        text NOT NULL DEFAULT 'scheduled',
    lease_owner  text,
    lease_until  timestamptz,
    payload      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    fired_at     timestamptz,
    cancelled_at timestamptz,
    CONSTRAINT reminders_id_length CHECK (length(id) BETWEEN 1 AND 200),
    CONSTRAINT reminders_state_known
        CHECK (state IN ('scheduled', 'firing', 'fired', 'cancelled')),
    CONSTRAINT reminders_lease_pair CHECK ((lease_owner IS NULL) = (lease_until IS NULL)),
    CONSTRAINT reminders_firing_leased CHECK (state <> 'firing' OR lease_until IS NOT NULL),
    CONSTRAINT reminders_fired_at_when_fired CHECK (state <> 'fired' OR fired_at IS NOT NULL),
    CONSTRAINT reminders_cancelled_at_when_cancelled
        CHECK (state <> 'cancelled' OR cancelled_at IS NOT NULL),
    CONSTRAINT reminders_payload_object CHECK (jsonb_typeof(payload) = 'object')
);
-- The scheduler's two questions: what is due, and whose lease ran out.
CREATE INDEX reminders_due_idx ON notify.reminders (deliver_at) WHERE state = 'scheduled';
CREATE INDEX reminders_lease_idx ON notify.reminders (lease_until) WHERE state = 'firing';
CREATE INDEX reminders_event_id_idx ON notify.reminders (event_id);
COMMENT ON TABLE notify.reminders IS
    'Reminders due later. A scheduler claims due rows with FOR UPDATE SKIP LOCKED and a lease, '
    'so several notifiers never fire one twice and a crashed one''s claims expire.';
COMMENT ON COLUMN notify.reminders.id IS
    'Chosen by the publisher (reminder.scheduled), so reminder.cancelled can name it.';
COMMENT ON COLUMN notify.reminders.event_id IS 'The reminder.scheduled event that created it.';
COMMENT ON COLUMN notify.reminders.state IS
    'scheduled -> firing (claimed, lease held) -> fired; scheduled -> cancelled.';
COMMENT ON COLUMN notify.reminders.lease_owner IS 'Notifier instance holding the claim while firing.';
COMMENT ON COLUMN notify.reminders.lease_until IS
    'A firing row whose lease ran out is claimed again by another notifier.';
COMMENT ON COLUMN notify.reminders.payload IS 'What to deliver when it fires (a JSON object).';
