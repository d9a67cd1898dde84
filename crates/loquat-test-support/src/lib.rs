//! Test support shared by Loquat's crates and the benchmark: fake upstream LLM servers
//! (`fake_upstream` speaks all five protocols; `fake_openai` is its OpenAI face), a fake
//! identity provider for SSO (`fake_idp`: OIDC and GitHub), throwaway databases (`postgres`),
//! buckets (`s3`) and directories (`slapd`, a real OpenLDAP).

pub mod fake_idp;
pub mod fake_openai;
pub mod fake_upstream;
pub mod postgres;
pub mod s3;
pub mod slapd;

/// Standard base64 (with padding), for tests that check encoded bodies.
pub fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
