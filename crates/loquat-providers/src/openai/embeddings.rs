//! OpenAI's embeddings endpoint (`POST {base}/embeddings`), as spoken by OpenAI and the
//! compatible servers that have one (vLLM, LocalAI, SiliconCloud…): request mapping, the call,
//! response mapping, tests. Azure reuses the response mapping with its deployment URL.

use loquat_core::llm::{Embeddings, Endpoint, ProviderError};
use serde::Deserialize;
use serde_json::json;

use super::{authorize, error_response};
use crate::errors;
use crate::transport::{Http, join_url, read_bounded};

/// Vectors are long: a few thousand floats per input, as JSON text.
const MAX_EMBEDDINGS_BODY_BYTES: usize = 64 * 1024 * 1024;

pub(crate) async fn embed(
    http: &Http,
    endpoint: &Endpoint,
    model: &str,
    inputs: &[String],
) -> Result<Embeddings, ProviderError> {
    let body = json!({ "model": model, "input": inputs, "encoding_format": "float" });
    let builder =
        http.client.post(join_url(&endpoint.base_url, "embeddings")).json(&body).timeout(http.non_streaming_timeout);
    send_embeddings(http, authorize(builder, endpoint)?, inputs.len()).await
}

/// Sends an embeddings request and reads OpenAI's answer. Shared with Azure.
pub(crate) async fn send_embeddings(
    http: &Http,
    builder: reqwest::RequestBuilder,
    inputs: usize,
) -> Result<Embeddings, ProviderError> {
    let mut response = http.send(builder).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    let (body, cut) = read_bounded(&mut response, MAX_EMBEDDINGS_BODY_BYTES).await.map_err(errors::transport)?;
    if cut {
        return Err(errors::protocol("the provider's embeddings are too large"));
    }
    embeddings_from(&body, inputs)
}

/// `data[].embedding` in the order of `data[].index`, and `usage.prompt_tokens`.
fn embeddings_from(body: &[u8], inputs: usize) -> Result<Embeddings, ProviderError> {
    #[derive(Deserialize)]
    struct Answer {
        data: Vec<Item>,
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct Item {
        index: Option<usize>,
        embedding: Vec<f32>,
    }
    #[derive(Deserialize)]
    struct Usage {
        #[serde(default)]
        prompt_tokens: u32,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|error| errors::protocol(format!("the embeddings are not OpenAI's format: {error}")))?;
    if answer.data.len() != inputs {
        let detail = format!("the provider sent {} embeddings for {inputs} inputs", answer.data.len());
        return Err(errors::protocol(detail));
    }
    let mut items: Vec<(usize, Vec<f32>)> = answer
        .data
        .into_iter()
        .enumerate()
        .map(|(position, item)| (item.index.unwrap_or(position), item.embedding))
        .collect();
    items.sort_by_key(|(index, _)| *index);
    Ok(Embeddings {
        vectors: items.into_iter().map(|(_, vector)| vector).collect(),
        prompt_tokens: answer.usage.map_or(0, |usage| usage.prompt_tokens),
    })
}

#[cfg(test)]
mod tests {
    use loquat_core::llm::ProviderErrorKind;

    use super::*;

    #[test]
    fn vectors_follow_their_index() {
        let body = br#"{"object":"list","data":[
            {"object":"embedding","index":1,"embedding":[0.5,-1]},
            {"object":"embedding","index":0,"embedding":[1,2]}],
            "model":"m","usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        let embeddings = embeddings_from(body, 2).expect("embeddings");
        assert_eq!(embeddings.vectors, vec![vec![1.0, 2.0], vec![0.5, -1.0]]);
        assert_eq!(embeddings.prompt_tokens, 7);
    }

    #[test]
    fn a_wrong_count_or_shape_is_a_protocol_error() {
        let one = br#"{"data":[{"embedding":[1]}]}"#;
        assert_eq!(embeddings_from(one, 1).map(|e| e.prompt_tokens).ok(), Some(0));
        assert_eq!(embeddings_from(one, 2).map_err(|e| e.kind).err(), Some(ProviderErrorKind::Protocol));
        assert_eq!(embeddings_from(b"<html>", 1).map_err(|e| e.kind).err(), Some(ProviderErrorKind::Protocol));
    }
}
