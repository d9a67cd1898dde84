-- Which Loquat process (node) is generating an answer, so a restarted node recovers its own
-- unfinished answers at once and other nodes' only when their heartbeat stops.
ALTER TABLE messages ADD COLUMN generating_by TEXT;
