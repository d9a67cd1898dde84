//! The fake IdP's signing keys: two fixed 2048-bit RSA keys (PKCS#1 PEM), generated with
//! `openssl genrsa -traditional 2048` for tests only — they sign nothing outside this fake.
//! The second one is for key rotation (a token whose `kid` the client has not cached yet).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};

/// A private key ready to sign RS256 tokens, and its public JWK.
pub(super) struct SigningKey {
    pub kid: &'static str,
    pub key: EncodingKey,
    pub jwk: Jwk,
}

impl SigningKey {
    fn load(kid: &'static str, pem: &str) -> Result<Self, String> {
        let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        let der = STANDARD.decode(body).map_err(|error| format!("the test key {kid} is not base64: {error}"))?;
        let key = EncodingKey::from_rsa_der(&der);
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)
            .map_err(|error| format!("the test key {kid} has no public half: {error}"))?;
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
        Ok(Self { kid, key, jwk })
    }
}

pub(super) fn load() -> Result<[SigningKey; 2], String> {
    Ok([SigningKey::load("fake-idp-key-1", KEY_1)?, SigningKey::load("fake-idp-key-2", KEY_2)?])
}

const KEY_1: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEogIBAAKCAQEAj7Mbkj4b1h2fBr8tl6uwwuTEiR7yguxpb7j+B+uvAUd0QuXc\n\
9o34Kcosmckg2bGzwMD+mFOSuS8EYotMLJ+8tRUUB5UvvEr07SRQ/JMdHQLLsfac\n\
LSn4C4m7RZ23j1BvohckvYx44rCRDXy0gcm2owfQZ7/wIuelMpvy4yvhn/+G6uX3\n\
CHhTWSfXP/3ybK/NNossAtk18bpLG2Ku2SAqV1SwOiU6gkTL8Gzc0A1eoUTpd1qJ\n\
YPZnNN3WBhvEGHBI5DhntgHWIDtxR14pBi0XcONnjnbIExZ3lmP+O/iaYfBAJKef\n\
iF9KUhrV+L0SAq/qpzK/ILtUS2q2vQN98yT69wIDAQABAoIBAALHeIOKDvjDpuU3\n\
Alc6G1eRnBl4z0Dn+JwQDF2z2bUhICcBEhZ0pXWNcvJgePGs5aiXMvVYPHC3b5LG\n\
VelRB5HLABGreXpfSsBhYO2ZnMkIWk8tUVTwSFtUxRnyFHBBon8UioHd+yKLPqrv\n\
nAAcmhsqFgZDqI3MRB4n9PkeyqTRAWlYluZwbfikpGHtZjYUqwWMtvTIYZ2nBVxA\n\
dpQMfaPgweEVEVzHNpfLgK7P2Nh+lP+fxW0VcC+QQmXnbr+m35esQXPE7ukHr0oO\n\
jEHn5KLJq927/Mli9vdDG7Qls4KoqtC/S8+2bZW+NgaMk3omzZ6DmJnaJfWFRUV4\n\
3GTZoWUCgYEAyqlhIvTc2S31/JxdBufZZSzhqPZdpaBgORkFbPf9UMjl3qWRYRpE\n\
GFVV639AlYtII6tUFxZk4NikALlG/e29yMzIqVp74bu8bI3+t8ks+94VTqqi2lhN\n\
oBqOwKjLeZV5n1qaUtqQn/VmLAGuVLh7y+0w+sQLl6glMvJ2uXuagv0CgYEAtYUU\n\
E/680hzuy0Z2YHcG2+0JCy29bV6nhjBzGsucs7aLjDw5rgNnu8i3UC3aSSsbrQOD\n\
WzHar3YW5lVy/RYSSXLcE5W25Y4VUokiYhmGG6NOBAE+kNkHlX5xkvUm76WMPowG\n\
Hh9eTwk7OWn1lqrKbwwqis91Gh3sYtIY3MMS2gMCgYBMyeEEXcNQhxmtnZGiDDdT\n\
Hq5iVvckyp+rAtALeeuBsJ1ov1NWd51Vmv/zO0Q9ZYjv+vrhxJp0l6GMpKdBj9NZ\n\
Qj7F7IMEBR5gA22ANbnVtVBdfko2cT74axer6EkwyHJM7weKXUZvVYxhIEHt1/kQ\n\
S89DNQUvcYamxzg1D6B8AQKBgFfchG1xPiBN1OAbySzEMFO/lkMM7sXDrT7ssKpl\n\
qAHs9/r3I8ww5cMlUmXC7AfCj/Dc5HX92aZYeJkg/zm1t0BKEnCAZTkT3wpGSphF\n\
Vn6GOzsBBzHBe0RHId5KP4B8FzgnOsbV1CZZh4sw2KkHHllGAEmURVBQ75ydqV8i\n\
JTvVAoGAOIgCNLKEUdVAe1/XGILmbfkbN9cPTfJVaRTM3Qe3dEV8MQ+ypdRhHyzj\n\
WxydWut8bLe8PQgFAUF+btjl7dGVxnPsJTlnew+p69xKg4ftewRWuZ13AU7lTSLk\n\
iPmoHKxsd+BXCfiOA8chB+sw8WkMaNSBPrEySKVriYoQlHszXmM=\n\
-----END RSA PRIVATE KEY-----\n";

const KEY_2: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEowIBAAKCAQEAx3ieyOm//CKdEEfmTY9z7FwTwefpqD7q0/0a+t/0FlDR2eoi\n\
NHEPA8C27g3SLS4mlLs2T7J/RCFh0z/AUSf2acSeYBmZvuim/QyVc0oYJXvTRjzG\n\
T4gqHiLl2lWfLYB0ZB3UqBdraI2CvpxsunlEGt2cEbHr9aWuqfqS6HuvU9X57VB+\n\
LAxiSUlCu7OhsYeeMRBjxvZcVBVKupBwXd84LfVJzRlxeW2DGOuUIAIS45zlRSen\n\
E8wPVhhxkwED9CR2UEILFsaKdzXamEhABVR9V9qny1NYZtZ4g7mQ11a+4pM5c+Ix\n\
qkigaUxjxTLFbYbZlgdtCBqLJjwPQoerS8Sb8QIDAQABAoIBAFnW1MUuql5YBJ+J\n\
kouKOa7RxcBGwHEbbU5vJ9CoP1oxqmJYVnGCHj4VdQ6AwRHCQHQqYYrBnRpFYrbv\n\
dqHWut/mQ2KLBTj7tgIwwbr8OyXewEhZJQQ7EqUiGJ4ehCPNQB67ZMUUTzb2zVUm\n\
RL4z0d27xAggN2Ma7TD3f2UgF9ZMs+6L+xgA6DYtDF9K9wua820ZIryfO/lxbqlU\n\
AlnLMSHyZj6gnwr6XAmoZENPBkdbCJknPXN4X5w25XHb97OQ2HdK/67rKfNcli35\n\
ePA4YyEbSwJNwhoSAwoAWGAELCUWhCA2wdUGPOLWp8MNU6J30tGwnQKDsk+WvvWZ\n\
XGcHmlUCgYEA94cdb4ku9v3F5FvtUv3Hdnfv9sWjfc/BcHC8vDOKsdY75i1cD0q0\n\
wpuCryrwgVnHUkMcWKgIy3p4zC+QeB1Ya8I+7F8uZWBco8WxgMLwdvQM8vetur1N\n\
8PXdKqOmisecBZNSpKINXbg9VHH5XBRoq/TugrcToLb2VPZK9wkZ2+cCgYEAzkxs\n\
lFSDaMDJaltxo5Rc+Ih5oPMeHXNk9qsdUGSrJHDlrir8RinjKZ+agSJQIVU64jMB\n\
JSGnXQoCzGJcUObPrwBuPXI6r6TfUusMtXqY74p9b+FRSzN+RLha6s724M7R5fqb\n\
T6Eio4QX7VaY51MjY2FAea34FiTZYVhH9i4ljmcCgYEA70ds/BoYDWmKeFMpGxX6\n\
UJpmnR23CvLf4wsIV8JXa8xWQQ9OM/YawRlFfoG61r/r/6iiaU2emty8k13TgVmU\n\
1S6EV0k3d4ZsZ2C/U2Kew87uCZ3GEoPXKXzzHLnwT63gND+TH1UMKLHmj5BR5mJQ\n\
QRJX0oKZ9b2IaN9h3mas2bcCgYB/R2OOOH5C+P7LodOA6x5ZMEpqZNTlsrZOAdC6\n\
MwHsH8N1K4wt9dXzbkcy+OqbRixoNrO0JwlNO8nyM5VlTKJCBG//dSSEDaLDU8Wp\n\
ihQlZjpx9n/jd8elumBNkpd6p9+UloOQI4htfigNBGqd/gtNW0keSZlQgDel+YOc\n\
fWgqbQKBgB9z0rBmQFtCMorAIYC1muy88hghE+Fq7wBMhkf8FWiF4/++vG656UvZ\n\
6z3Fa5mlbEzMqTH/8S5G8SADFuNZmvqV5a4L+XgOgHpuDtfpnoZvt7mX8DpKxibP\n\
7rD+z8QNg3D4LBsipa8yIE8Bd8Hpgq3IsM40sQD0mrGl3VPSUD6U\n\
-----END RSA PRIVATE KEY-----\n";
