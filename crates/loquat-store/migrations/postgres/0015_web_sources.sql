-- A source may be a web page a tool found (a search result): its address.
ALTER TABLE message_sources ADD COLUMN url TEXT;
