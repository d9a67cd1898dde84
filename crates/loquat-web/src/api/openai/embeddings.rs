//! `POST /v1/embeddings`: text inputs (a string or an array of strings) embedded by the named
//! model (`provider/model`), answered in OpenAI's list shape with float vectors or, with
//! `encoding_format: "base64"`, base64 of little-endian f32 (what the official SDKs ask for).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::caller::ApiCaller;
use super::error::ApiError;
use super::request::{Fields, RawBody};
use crate::AppState;

/// OpenAI's own limit on inputs per request.
const MAX_INPUTS: usize = 2048;

pub async fn create_embeddings(
    caller: ApiCaller,
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let tr = caller.tr();
    let mut fields = Fields::parse(&body)?;
    let model: String = fields.required("model")?;
    let inputs = inputs(fields.required("input")?)?;
    let base64 = match fields.get::<String>("encoding_format")?.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            let message = "Invalid value for 'encoding_format': expected 'float' or 'base64'.";
            return Err(ApiError::invalid_param("encoding_format", message));
        }
    };
    if fields.get::<Value>("dimensions")?.is_some() {
        let message = "'dimensions' is not supported: Loquat returns the model's own vectors.";
        return Err(ApiError::invalid_param("dimensions", message));
    }
    state.allow_chat(&caller.0).await.map_err(ApiError::from_web)?;
    let embeddings = state
        .services
        .gateway
        .api_embeddings(&caller.0.user, &model, &inputs)
        .await
        .map_err(|error| ApiError::from_core(error, &model, tr))?;
    let data: Vec<Value> = embeddings
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 { Value::from(base64_f32(vector)) } else { json!(vector) };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let tokens = embeddings.prompt_tokens;
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    })))
}

/// `input` as texts; token arrays are refused (Loquat does not know every provider's tokenizer).
fn inputs(input: Value) -> Result<Vec<String>, ApiError> {
    let invalid = |message: &str| ApiError::invalid_param("input", message.to_owned());
    let inputs = match input {
        Value::String(text) => vec![text],
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => Ok(text),
                _ => Err(invalid("'input' must be a string or an array of strings (token arrays are not supported).")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(invalid("'input' must be a string or an array of strings.")),
    };
    if inputs.is_empty() || inputs.iter().any(String::is_empty) {
        return Err(invalid("'input' cannot be empty, nor contain an empty string."));
    }
    if inputs.len() > MAX_INPUTS {
        return Err(invalid("'input' may hold at most 2048 texts."));
    }
    Ok(inputs)
}

/// Standard base64 (with padding) of the vector's little-endian f32 bytes.
fn base64_f32(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|value| value.to_le_bytes()).collect();
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let word = group.iter().enumerate().fold(0u32, |word, (at, byte)| word | u32::from(*byte) << (16 - 8 * at));
        for position in 0..4 {
            if position <= group.len() {
                encoded.push(char::from(ALPHABET[(word >> (18 - 6 * position) & 63) as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_encode_as_base64_of_little_endian_floats() {
        // 0.0 = 00 00 00 00, 1.0 = 00 00 80 3F.
        assert_eq!(base64_f32(&[0.0, 1.0]), "AAAAAAAAgD8=");
        assert_eq!(base64_f32(&[]), "");
        assert_eq!(base64_f32(&[-0.25]), "AACAvg==");
        assert_eq!(base64_f32(&[1.0, 2.0, 0.5]), "AACAPwAAAEAAAAA/");
    }

    #[test]
    fn inputs_are_texts() {
        assert_eq!(inputs(json!("a")).ok(), Some(vec!["a".to_owned()]));
        assert_eq!(inputs(json!(["a", "b"])).map(|i| i.len()).ok(), Some(2));
        assert!(inputs(json!([1, 2])).is_err());
        assert!(inputs(json!([])).is_err());
        assert!(inputs(json!([""])).is_err());
    }
}
