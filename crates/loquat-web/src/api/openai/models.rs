//! `GET /v1/models` (every model the caller can use as `provider/model`, then their assistants
//! as `assistant/<id>`) and `GET /v1/models/{id}` (any name the chat endpoint accepts), in
//! OpenAI's list and model shapes.

use axum::Json;
use axum::extract::{Path, State};
use loquat_core::service::ApiModel;
use serde_json::{Value, json};

use super::caller::ApiCaller;
use super::error::ApiError;
use crate::AppState;

pub async fn list_models(caller: ApiCaller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tr = caller.tr();
    let models = state.services.gateway.api_models(&caller.0.user).await.map_err(|e| ApiError::from_core(e, "", tr))?;
    let data: Vec<Value> = models.iter().map(model_json).collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}

pub async fn get_model(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tr = caller.tr();
    let model =
        state.services.gateway.api_model(&caller.0.user, &name).await.map_err(|e| ApiError::from_core(e, &name, tr))?;
    Ok(Json(model_json(&model)))
}

/// OpenAI's model object, plus a human `name` (clients that show one use it).
fn model_json(model: &ApiModel) -> Value {
    json!({
        "id": model.id,
        "object": "model",
        "created": model.created.map_or(0, |created| created.as_millis() / 1000),
        "owned_by": model.owned_by,
        "name": model.name,
    })
}
