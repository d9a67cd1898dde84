//! Embeddings as the fakes serve them: OpenAI's `POST /v1/embeddings` (and Azure's deployment
//! route), Ollama's `POST /api/embed`. Vectors are a pure function of the text
//! ([`fake_embedding`]), so tests can predict them exactly; usage counts words.

use base64::Engine;
use serde_json::{Value, json};

/// How many dimensions the fake vectors have.
pub const FAKE_DIMENSIONS: usize = 64;

/// The vector the fakes return for `text`: a bag of its words hashed into
/// [`FAKE_DIMENSIONS`] buckets (lower-cased letter-and-digit runs; Chinese, Japanese and Korean
/// text as overlapping character pairs), each bucket the count of its words. Texts sharing words
/// are close, so retrieval through the fake is testable; counts are small integers, exactly
/// representable, so they survive JSON and base64 unchanged.
pub fn fake_embedding(text: &str) -> Vec<f32> {
    fn bucket(term: &str) -> usize {
        // FNV-1a: stable across runs and platforms.
        let hash = term
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
        (hash % FAKE_DIMENSIONS as u64) as usize
    }
    let cjk = |c: char| matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF);
    let mut vector = vec![0.0f32; FAKE_DIMENSIONS];
    let mut word = String::new();
    let mut previous: Option<char> = None;
    for c in text.chars().chain(std::iter::once(' ')) {
        if cjk(c) {
            if let Some(before) = previous {
                vector[bucket(&format!("{before}{c}"))] += 1.0;
            }
            previous = Some(c);
        } else {
            previous = None;
        }
        if c.is_alphanumeric() && !cjk(c) {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            vector[bucket(&word)] += 1.0;
            word.clear();
        }
    }
    vector
}

/// `input` as a list of texts: one string or an array of strings (token arrays are refused).
pub(super) fn inputs_of(request: &Value) -> Option<Vec<String>> {
    match &request["input"] {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) => items.iter().map(|item| item.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// Words of every input: what the fakes report as prompt tokens.
pub(super) fn word_count(inputs: &[String]) -> usize {
    inputs.iter().map(|text| text.split_whitespace().count()).sum()
}

/// OpenAI's answer: `data[]` of `embedding` objects (floats, or base64 of little-endian f32
/// when the request asked for `encoding_format: "base64"`) and `usage`.
pub(super) fn openai_answer(model: &str, inputs: &[String], base64: bool) -> Value {
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = fake_embedding(text);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|value| value.to_le_bytes()).collect();
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let tokens = word_count(inputs);
    json!({ "object": "list", "data": data, "model": model,
            "usage": { "prompt_tokens": tokens, "total_tokens": tokens } })
}

/// Ollama's `/api/embed` answer.
pub(super) fn ollama_answer(model: &str, inputs: &[String]) -> Value {
    let embeddings: Vec<Vec<f32>> = inputs.iter().map(|text| fake_embedding(text)).collect();
    json!({ "model": model, "embeddings": embeddings, "total_duration": 14_143_917, "load_duration": 1_019_500,
            "prompt_eval_count": word_count(inputs) })
}
