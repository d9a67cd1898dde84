//! Other products' trees hold rows Loquat has no place for (system prompts, tool calls and
//! their results, hidden rows) and split one answer over several rows (text, a tool call, more
//! text). [`fold`] keeps what a person saw: a dropped row's children hang from its nearest
//! kept ancestor, and an answer row whose parent is an answer with no other child joins it.

use std::collections::HashMap;

use super::batch::ImportedMessage;
use crate::domain::MessageRole;

/// A row of a source tree: its key, its parent's key, and the message it becomes (`None`: left
/// out).
pub struct Row {
    pub key: String,
    pub parent: Option<String>,
    pub message: Option<ImportedMessage>,
}

/// What [`fold`] made: the messages, and where each source key ended up (for the source's
/// "current" leaf).
pub struct Folded {
    pub messages: Vec<ImportedMessage>,
    pub home: HashMap<String, String>,
    /// How many rows were left out.
    pub dropped: usize,
}

pub fn fold(rows: Vec<Row>) -> Folded {
    let index_of: HashMap<&str, usize> =
        rows.iter().enumerate().map(|(index, row)| (row.key.as_str(), index)).collect();
    let parent: Vec<Option<usize>> =
        rows.iter().map(|row| row.parent.as_deref().and_then(|parent| index_of.get(parent)).copied()).collect();
    let kept: Vec<bool> = rows.iter().map(|row| row.message.is_some()).collect();
    // The nearest kept ancestor of each row, each chain walked once (a cycle ends the walk).
    let mut ancestor: Vec<Option<Option<usize>>> = vec![None; rows.len()];
    for start in 0..rows.len() {
        let mut path = Vec::new();
        let mut cursor = parent[start];
        let found = loop {
            match cursor {
                None => break None,
                Some(at) if kept[at] => break Some(at),
                Some(at) => {
                    if let Some(known) = ancestor[at] {
                        break known;
                    }
                    if path.len() > rows.len() {
                        break None;
                    }
                    path.push(at);
                    cursor = parent[at];
                }
            }
        };
        ancestor[start] = Some(found);
        for at in path {
            ancestor[at] = Some(found);
        }
    }
    let ancestor: Vec<Option<usize>> = ancestor.into_iter().map(Option::flatten).collect();
    let dropped = kept.iter().filter(|kept| !**kept).count();
    let keys: Vec<String> = rows.iter().map(|row| row.key.clone()).collect();
    let mut messages: Vec<Option<ImportedMessage>> = rows.into_iter().map(|row| row.message).collect();
    // Kept children by kept parent, and the roots, to walk parents before children.
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for index in (0..messages.len()).filter(|index| kept[*index]) {
        children.entry(ancestor[index].filter(|parent| *parent != index)).or_default().push(index);
    }
    // Where each row's message ended up (itself, or the answer it joined).
    let mut home: Vec<usize> = (0..messages.len()).collect();
    let mut queue: std::collections::VecDeque<usize> = children.get(&None).cloned().unwrap_or_default().into();
    let mut visited = vec![false; messages.len()];
    while let Some(index) = queue.pop_front() {
        visited[index] = true;
        let kids = children.get(&Some(index)).cloned().unwrap_or_default();
        for &kid in &kids {
            queue.push_back(kid);
        }
        let Some(original_parent) = ancestor[index] else { continue };
        let target = home[original_parent];
        let is_answer = messages[index].as_ref().is_some_and(|m| m.role == MessageRole::Assistant);
        let parent_is_answer = messages[target].as_ref().is_some_and(|m| m.role == MessageRole::Assistant);
        let only_child = children.get(&Some(original_parent)).map(Vec::len) == Some(1);
        if is_answer && parent_is_answer && only_child {
            let child = messages[index].take().expect("kept");
            let joined = messages[target].as_mut().expect("kept");
            join_text(&mut joined.content, &child.content);
            join_text(&mut joined.reasoning, &child.reasoning);
            joined.model = child.model.or(joined.model.take());
            joined.provider = child.provider.or(joined.provider.take());
            joined.files.extend(child.files);
            home[index] = target;
        } else if let Some(message) = messages[index].as_mut() {
            message.parent = Some(keys[target].clone());
        }
    }
    let mut homes = HashMap::new();
    for index in 0..keys.len() {
        let place = if kept[index] { Some(home[index]) } else { ancestor[index].map(|at| home[at]) };
        if let Some(place) = place.filter(|place| *place != index) {
            homes.insert(keys[index].clone(), keys[place].clone());
        }
    }
    for (index, message) in messages.iter_mut().enumerate() {
        // Roots, and rows on a cycle (left for the writer to leave out), keep their own link.
        if let Some(message) = message.as_mut()
            && (ancestor[index].is_none() || !visited[index])
        {
            message.parent = ancestor[index].map(|at| keys[at].clone());
        }
    }
    Folded { messages: messages.into_iter().flatten().collect(), home: homes, dropped }
}

fn join_text(into: &mut String, more: &str) {
    if more.is_empty() {
        return;
    }
    if !into.is_empty() {
        into.push_str("\n\n");
    }
    into.push_str(more);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn row(key: &str, parent: Option<&str>, role: Option<MessageRole>, text: &str) -> Row {
        Row {
            key: key.to_owned(),
            parent: parent.map(str::to_owned),
            message: role.map(|role| ImportedMessage::new(key.to_owned(), None, role, text.to_owned(), Timestamp(0))),
        }
    }

    #[test]
    fn dropped_rows_hand_their_children_up_and_split_answers_join() {
        use MessageRole::{Assistant, User};
        let folded = fold(vec![
            row("system", None, None, ""),
            row("q", Some("system"), Some(User), "question"),
            row("a", Some("q"), Some(Assistant), "first part"),
            row("call", Some("a"), None, ""),
            row("result", Some("call"), None, ""),
            row("b", Some("result"), Some(Assistant), "second part"),
            row("q2", Some("b"), Some(User), "next"),
        ]);
        let texts: Vec<_> = folded.messages.iter().map(|m| (m.key.as_str(), m.content.as_str())).collect();
        assert_eq!(texts, [("q", "question"), ("a", "first part\n\nsecond part"), ("q2", "next")]);
        assert_eq!(folded.messages[0].parent, None);
        assert_eq!(folded.messages[2].parent.as_deref(), Some("a"));
        assert_eq!(folded.home["b"], "a");
        assert_eq!(folded.home["result"], "a");
        assert_eq!(folded.dropped, 3);
    }

    #[test]
    fn siblings_stay_apart_and_cycles_end() {
        use MessageRole::{Assistant, User};
        let folded = fold(vec![
            row("q", None, Some(User), "question"),
            row("a1", Some("q"), Some(Assistant), "one"),
            row("a2", Some("q"), Some(Assistant), "two"),
            row("x", Some("y"), Some(User), "loop"),
            row("y", Some("x"), Some(Assistant), "loop"),
        ]);
        assert_eq!(folded.messages.len(), 5);
        assert_eq!(folded.messages[2].parent.as_deref(), Some("q"));
    }

    #[test]
    fn a_long_chain_of_dropped_rows_is_walked_once() {
        // 200,000 rows, every other one dropped (quadratic work would not finish).
        let mut rows = Vec::new();
        for index in 0..200_000_usize {
            let parent = index.checked_sub(1).map(|p| p.to_string());
            let role =
                (index % 2 == 0).then_some(if index % 4 == 0 { MessageRole::User } else { MessageRole::Assistant });
            rows.push(Row {
                key: index.to_string(),
                parent,
                message: role.map(|role| ImportedMessage::new(index.to_string(), None, role, "x".into(), Timestamp(0))),
            });
        }
        let folded = fold(rows);
        assert_eq!(folded.messages.len(), 100_000);
        assert_eq!(folded.messages[99_999].parent.as_deref(), Some("199996"));
    }
}
