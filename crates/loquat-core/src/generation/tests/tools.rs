//! The tool loop: calls run at once and are recorded as they start and end, results go back
//! to the same model, the step limit makes the model answer, and a stop cancels running calls.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::*;
use crate::domain::{MessageStatus, StepStatus};
use crate::llm::{ChatEvent, ChatRole, ToolCall, ToolChoice, ToolSpec};
use crate::tools::{Tool, ToolFailure, ToolLimits, ToolOutput, Toolbox};

/// Waits `seconds` (from its arguments), then says `text` back (or fails on "fail").
struct Slow(ToolSpec);

#[async_trait]
impl Tool for Slow {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }

    async fn call(&self, arguments: Value) -> Result<ToolOutput, ToolFailure> {
        tokio::time::sleep(secs(arguments["seconds"].as_u64().unwrap_or(1))).await;
        match arguments["text"].as_str().unwrap_or_default() {
            "fail" => Err(ToolFailure("the lookup failed".into())),
            text => Ok(format!("found {text}").into()),
        }
    }
}

fn toolbox(max_steps: usize) -> Toolbox {
    let spec = ToolSpec {
        name: "lookup".into(),
        description: "Looks something up.".into(),
        parameters: json!({"type": "object", "properties": {"text": {"type": "string"}}}),
    };
    let limits = ToolLimits { max_steps, call_timeout: secs(60), max_result_chars: 1_000 };
    Toolbox::new(vec![Arc::new(Slow(spec))], limits)
}

fn call(id: &str, arguments: Value) -> ChatEvent {
    ChatEvent::ToolCall(ToolCall { id: id.into(), name: "lookup".into(), arguments: arguments.to_string() })
}

#[tokio::test(start_paused = true)]
async fn calls_run_at_once_and_their_results_go_back_to_the_model() {
    let calling = Script::new()
        .text("Let me look.")
        .event(call("c1", json!({"text": "a", "seconds": 3})))
        .event(call("c2", json!({"text": "fail", "seconds": 3})));
    let node = Node::new([calling, Script::new().text("Found it.")]).await;
    let answer = node.start_with(&["model-a"], Some(toolbox(10))).await.expect("finishes");
    assert_eq!(answer.status, MessageStatus::Complete);
    assert_eq!(answer.content, "Let me look.\n\nFound it.");
    // Both calls took three seconds, together.
    assert!(answer.duration_ms.expect("timed") < 4_000, "{:?}", answer.duration_ms);

    let steps = node.store.message_tool_steps(node.user, node.answer.id).await.expect("reads");
    let summary: Vec<_> = steps.iter().map(|s| (s.seq, s.offset, s.status, s.result.as_str())).collect();
    assert_eq!(
        summary,
        [(0, 12, StepStatus::Done, "found a"), (1, 12, StepStatus::Failed, "Error: the lookup failed")]
    );
    assert!(steps.iter().all(|s| s.duration_ms == Some(3_000)));

    let requests = node.client.requests();
    assert_eq!(requests.len(), 2, "the same model is asked again");
    let sent = &requests[1].messages;
    let turn = &sent[sent.len() - 3];
    assert_eq!((turn.role, turn.content.as_str(), turn.tool_calls.len()), (ChatRole::Assistant, "Let me look.", 2));
    let results: Vec<_> =
        sent[sent.len() - 2..].iter().map(|m| (m.role, m.tool_call_id.clone(), m.content.clone())).collect();
    assert_eq!(
        results,
        [
            (ChatRole::Tool, Some("c1".into()), "found a".into()),
            (ChatRole::Tool, Some("c2".into()), "Error: the lookup failed".into())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn at_the_step_limit_the_model_must_answer() {
    let calling = || Script::new().event(call("c", json!({"text": "again", "seconds": 1})));
    let node = Node::new([calling(), calling(), calling(), Script::new().text("never asked")]).await;
    let answer = node.start_with(&["model-a"], Some(toolbox(2))).await.expect("finishes");
    assert_eq!(answer.status, MessageStatus::Complete);
    let requests = node.client.requests();
    assert_eq!(requests.len(), 3, "two rounds of calls, then one request told to answer");
    assert_eq!(requests[2].tool_choice, ToolChoice::None);
    assert!(requests[2].messages.last().expect("a note").content.contains("Answer now"));
    // It called again anyway: the answer ends there, with two rounds of calls run.
    let steps = node.store.message_tool_steps(node.user, node.answer.id).await.expect("reads");
    assert_eq!(steps.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stop_cancels_the_running_calls() {
    let calling = Script::new().event(call("c1", json!({"text": "slow", "seconds": 30})));
    let node = Node::new([calling]).await;
    let finished = node.start_with(&["model-a"], Some(toolbox(10)));
    let mut events = node.subscribe().events;
    // The call is announced as running.
    loop {
        if let Ok(GenerationEvent::Steps(steps)) = events.recv().await {
            assert_eq!(steps[0].status, StepStatus::Running);
            break;
        }
    }
    tokio::time::sleep(secs(1)).await;
    assert!(node.generations.stop(node.user, node.answer.id));
    let answer = finished.await.expect("finishes");
    assert_eq!(answer.status, MessageStatus::Stopped);
    assert!(answer.duration_ms.expect("timed") < 2_000);
    let steps = node.store.message_tool_steps(node.user, node.answer.id).await.expect("reads");
    assert_eq!(steps[0].status, StepStatus::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn a_response_fanning_out_calls_runs_a_few_and_keeps_a_bounded_number() {
    let mut fanning = Script::new();
    for index in 0..200 {
        fanning = fanning.event(call(&format!("c{index}"), json!({"text": "x", "seconds": 1})));
    }
    let node = Node::new([fanning, Script::new().text("Done.")]).await;
    let answer = node.start_with(&["model-a"], Some(toolbox(10))).await.expect("finishes");
    assert_eq!(answer.status, MessageStatus::Complete);
    let steps = node.store.message_tool_steps(node.user, node.answer.id).await.expect("reads");
    assert_eq!(steps.len(), crate::tools::MAX_CALLS_KEPT);
    let ran = steps.iter().filter(|s| s.status == StepStatus::Done).count();
    assert_eq!(ran, crate::tools::MAX_CALLS_PER_TURN);
    assert!(steps.last().expect("steps").result.contains("did not run"));
    let second = &node.client.requests()[1].messages;
    assert_eq!(
        second.iter().filter(|m| m.role == ChatRole::Tool).count(),
        crate::tools::MAX_CALLS_KEPT,
        "one result per call kept"
    );
}
