-- Search across a person's messages: each message's search terms (the owner's token first,
-- then its words: stemmed English, CJK character pairs), written by the store with every
-- content write. A row's rowid is its message's rowid; a deleted message takes its row along.
CREATE VIRTUAL TABLE message_search USING fts5(terms, tokenize = 'unicode61 remove_diacritics 0');
CREATE TRIGGER message_search_forget AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = old.rowid;
END;
