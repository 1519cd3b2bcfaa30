-- 0003_deliveries_index.sql - one index less on the busiest table.
--
-- deliveries_state_next_attempt_idx (state, next_attempt_at) from 0001 is
-- covered by 0002's partial deliveries_waiting_due_idx for the only query
-- that filters on state (the scheduler's), and every delivery row is
-- written two or three times (insert, claim, outcome): each write paid for
-- it. The notifier benchmark (bench/notifier_e2e.sh) went from ~3,700 to
-- ~4,500 events/s without it.
DROP INDEX notify.deliveries_state_next_attempt_idx;
