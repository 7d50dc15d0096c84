-- 0002_replay_until.sql: the high-water mark of a partial re-projection.
--
-- `replay --from P` (proj_pg_rewind) moves next_pos back to P and records
-- here the position the read models had reached before. While a batch
-- starts below replay_until, its new rows may already be in the tables (they
-- were projected before the rewind), so the projector writes them as upserts
-- instead of plain inserts; the batch that moves next_pos to or past
-- replay_until sets it back to 0.
ALTER TABLE projection_state ADD COLUMN replay_until bigint NOT NULL DEFAULT 0;
