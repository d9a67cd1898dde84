//! OpenAI's media endpoints, as OpenAI and the compatible servers that have them speak them:
//! speech (`POST {base}/audio/speech`), transcription (`POST {base}/audio/transcriptions`,
//! multipart, Whisper-style) and image generation (`POST {base}/images/generations`; pictures
//! come back as base64, or as an address fetched through the same client, so a member's own
//! server's addresses pass the same guard). Every body is read to a bound.

use base64::Engine;
use loquat_core::llm::{
    Audio, Endpoint, GeneratedImage, ImageRequest, ProviderError, SpeechRequest, TranscriptionRequest,
};
use serde::Deserialize;
use serde_json::json;

use super::{authorize, error_response};
use crate::errors;
use crate::transport::{Http, join_url, read_bounded};

/// The most audio one answer to be read aloud makes (minutes of speech).
const MAX_AUDIO_BYTES: usize = 32 * 1024 * 1024;
/// A transcription's text.
const MAX_TRANSCRIPT_BYTES: usize = 4 * 1024 * 1024;
/// The pictures of one request, base64 included.
const MAX_IMAGES_BODY_BYTES: usize = 96 * 1024 * 1024;
/// One picture fetched from an address.
const MAX_IMAGE_BYTES: usize = 32 * 1024 * 1024;

pub(crate) async fn speech(http: &Http, endpoint: &Endpoint, request: &SpeechRequest) -> Result<Audio, ProviderError> {
    let body = json!({
        "model": request.model,
        "input": request.input,
        "voice": request.voice,
        "response_format": "mp3",
    });
    let builder =
        http.client.post(join_url(&endpoint.base_url, "audio/speech")).json(&body).timeout(http.non_streaming_timeout);
    let mut response = http.send(authorize(builder, endpoint)?).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    let mime = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("audio/mpeg")
        .to_owned();
    if mime.starts_with("application/json") || mime.starts_with("text/") {
        return Err(errors::protocol(format!("the provider answered {mime} instead of audio")));
    }
    let (bytes, cut) = read_bounded(&mut response, MAX_AUDIO_BYTES).await.map_err(errors::transport)?;
    if cut {
        return Err(errors::protocol("the provider's audio is too long"));
    }
    if bytes.is_empty() {
        return Err(errors::protocol("the provider sent no audio"));
    }
    Ok(Audio { bytes, mime })
}

pub(crate) async fn transcribe(
    http: &Http,
    endpoint: &Endpoint,
    request: &TranscriptionRequest,
) -> Result<String, ProviderError> {
    let part = reqwest::multipart::Part::bytes(request.audio.to_vec()).file_name(request.file_name.clone());
    let mut form = reqwest::multipart::Form::new()
        .part("file", part)
        .text("model", request.model.clone())
        .text("response_format", "json");
    if let Some(language) = &request.language {
        form = form.text("language", language.clone());
    }
    let builder = http
        .client
        .post(join_url(&endpoint.base_url, "audio/transcriptions"))
        .multipart(form)
        .timeout(http.non_streaming_timeout);
    let mut response = http.send(authorize(builder, endpoint)?).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    let (body, cut) = read_bounded(&mut response, MAX_TRANSCRIPT_BYTES).await.map_err(errors::transport)?;
    if cut {
        return Err(errors::protocol("the provider's transcript is too long"));
    }
    #[derive(Deserialize)]
    struct Transcript {
        text: String,
    }
    // `json` as asked; some servers answer plain text whatever they are asked.
    match serde_json::from_slice::<Transcript>(&body) {
        Ok(transcript) => Ok(transcript.text),
        Err(_) if !body.starts_with(b"{") => Ok(String::from_utf8_lossy(&body).trim().to_owned()),
        Err(error) => Err(errors::protocol(format!("the transcript is not OpenAI's format: {error}"))),
    }
}

pub(crate) async fn generate_images(
    http: &Http,
    endpoint: &Endpoint,
    request: &ImageRequest,
) -> Result<Vec<GeneratedImage>, ProviderError> {
    let mut body = json!({
        "model": request.model,
        "prompt": request.prompt,
        "n": request.count,
        "size": request.size,
    });
    // DALL·E answers with addresses unless asked for the bytes; GPT image models always send them.
    if request.model.starts_with("dall-e") {
        body["response_format"] = json!("b64_json");
    }
    let builder = http
        .client
        .post(join_url(&endpoint.base_url, "images/generations"))
        .json(&body)
        .timeout(http.non_streaming_timeout.max(std::time::Duration::from_secs(180)));
    let mut response = http.send(authorize(builder, endpoint)?).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    let (body, cut) = read_bounded(&mut response, MAX_IMAGES_BODY_BYTES).await.map_err(errors::transport)?;
    if cut {
        return Err(errors::protocol("the provider's images are too large"));
    }
    #[derive(Deserialize)]
    struct Answer {
        data: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        b64_json: Option<String>,
        url: Option<String>,
        revised_prompt: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(&body)
        .map_err(|error| errors::protocol(format!("the images are not OpenAI's format: {error}")))?;
    let mut images = Vec::with_capacity(answer.data.len());
    for item in answer.data.into_iter().take(request.count.max(1) as usize) {
        let bytes = match (item.b64_json, item.url) {
            (Some(encoded), _) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| errors::protocol("an image is not base64"))?
                .into(),
            (None, Some(url)) => fetch_image(http, &url).await?,
            (None, None) => return Err(errors::protocol("an image has neither data nor an address")),
        };
        images.push(GeneratedImage { bytes, revised_prompt: item.revised_prompt });
    }
    if images.is_empty() {
        return Err(errors::protocol("the provider drew no image"));
    }
    Ok(images)
}

/// A picture the provider left at an address (through the same client and guard).
async fn fetch_image(http: &Http, url: &str) -> Result<bytes::Bytes, ProviderError> {
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(errors::protocol("an image address is not http(s)"));
    }
    let mut response = http.send(http.client.get(url).timeout(http.non_streaming_timeout)).await?;
    if !response.status().is_success() {
        return Err(errors::protocol(format!("the image address answered {}", response.status().as_u16())));
    }
    let (bytes, cut) = read_bounded(&mut response, MAX_IMAGE_BYTES).await.map_err(errors::transport)?;
    if cut {
        return Err(errors::protocol("an image is too large"));
    }
    Ok(bytes)
}
