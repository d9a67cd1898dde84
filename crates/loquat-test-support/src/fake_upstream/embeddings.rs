//! Embeddings as the fakes serve them: OpenAI's `POST /v1/embeddings` (and Azure's deployment
//! route), Ollama's `POST /api/embed`. Vectors are a pure function of the text
//! ([`fake_embedding`]), so tests can predict them exactly; usage counts words.

use base64::Engine;
use serde_json::{Value, json};

/// The vector the fakes return for `text`: its length in characters, its number of words, then
/// `0.5` and `-0.25` (all exactly representable, so they survive JSON and base64 unchanged).
pub fn fake_embedding(text: &str) -> Vec<f32> {
    let characters = text.chars().count() as f32;
    let words = text.split_whitespace().count() as f32;
    vec![characters, words, 0.5, -0.25]
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
