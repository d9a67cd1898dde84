-- A source may span pages (a passage that crosses a page break): its last page, NULL when it
-- is on one page (`page`) or has none.
ALTER TABLE message_sources ADD COLUMN page_end BIGINT;
