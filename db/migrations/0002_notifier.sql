-- 0002_notifier.sql - what the notifier needs beyond the first schema.
--
-- Deliveries get an explicit claim: a notifier about to send a row takes it
-- for NOTIFY_CLAIM_LEASE (claim_owner, claim_until). A claim that runs out
-- (the notifier died mid-send) makes the row available again, so a crash
-- delays a message but never loses it. provider_ref records what the channel
-- answered (Telegram message_id, SMTP Message-ID).

ALTER TABLE notify.deliveries
    ADD COLUMN claim_owner  text,
    ADD COLUMN claim_until  timestamptz,
    ADD COLUMN provider_ref text,
    ADD CONSTRAINT deliveries_claim_pair CHECK ((claim_owner IS NULL) = (claim_until IS NULL)),
    ADD CONSTRAINT deliveries_claim_only_waiting
        CHECK (claim_owner IS NULL OR state IN ('pending', 'retrying'));
COMMENT ON COLUMN notify.deliveries.claim_owner IS
    'Notifier instance sending this row right now (host:pid:random).';
COMMENT ON COLUMN notify.deliveries.claim_until IS
    'The claim runs out then; afterwards another notifier may take the row.';
COMMENT ON COLUMN notify.deliveries.provider_ref IS
    'What the channel answered: Telegram message_id, SMTP Message-ID.';

-- The scheduler's question: which waiting rows are due (quiet hours over,
-- deliver_at reached, a dead notifier's claim expired)?
CREATE INDEX deliveries_waiting_due_idx ON notify.deliveries (next_attempt_at)
    WHERE state IN ('pending', 'retrying');

-- A reminder remembers who gets it; reminder.cancelled may arrive before
-- reminder.scheduled (different queues, retries), so a cancel of an unknown
-- id leaves a tombstone (state cancelled) that the later schedule respects.
COMMENT ON COLUMN notify.reminders.user_id IS
    'First recipient (for operators); payload holds the full envelope to deliver.';
