//! Test support shared by Loquat's crates and the benchmark: fake upstream LLM servers
//! (`fake_openai`) and throwaway databases (`postgres`).

pub mod fake_openai;
pub mod postgres;
