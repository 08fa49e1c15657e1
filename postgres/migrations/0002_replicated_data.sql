-- Where a tenant's data lives: 'local' (its server's disk only) or
-- 'replicated' (each copy runs under slum guard, which replicates its SQLite
-- database to the replica named here and holds the replica's single-writer
-- lease). replica is an s3:// URL without credentials, '' for local data.
ALTER TABLE tenants ADD COLUMN data text COLLATE "C" NOT NULL DEFAULT 'local' CHECK (data IN ('local', 'replicated'));
ALTER TABLE tenants ADD COLUMN replica text COLLATE "C" NOT NULL DEFAULT '' CHECK ((data = 'replicated') = (replica <> ''));
