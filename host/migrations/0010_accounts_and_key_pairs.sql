-- Merchant accounts carry what gates their keys (KYC tier, KYB status) and
-- whether they may use the API at all. Keys come in pairs (a secret and a
-- public key made together) with scopes and an IP allowlist.
ALTER TABLE merchants ADD COLUMN kyc_tier INTEGER NOT NULL DEFAULT 0 CHECK (kyc_tier BETWEEN 0 AND 3);
ALTER TABLE merchants ADD COLUMN kyb_status TEXT NOT NULL DEFAULT 'none'
    CHECK (kyb_status IN ('none', 'pending', 'approved', 'rejected'));
ALTER TABLE merchants ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'suspended', 'deactivated'));
-- Merchants that already had keys had sandbox access: Tier 2.
UPDATE merchants SET kyc_tier = 2 WHERE id IN (SELECT merchant_id FROM api_keys);

-- The pair a key belongs to (keys made before pairs are each their own).
ALTER TABLE api_keys ADD COLUMN pair_id TEXT;
UPDATE api_keys SET pair_id = id;
-- Space-separated scope names; NULL: every scope.
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
-- Space-separated IP addresses and CIDR blocks; NULL: any address.
ALTER TABLE api_keys ADD COLUMN ip_allowlist TEXT;
CREATE INDEX api_keys_by_pair ON api_keys (pair_id);
CREATE INDEX api_keys_by_merchant ON api_keys (merchant_id, mode);
