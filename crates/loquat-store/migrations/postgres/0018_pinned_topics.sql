-- A topic its owner pinned stays at the top of the list.
ALTER TABLE topics ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE;
