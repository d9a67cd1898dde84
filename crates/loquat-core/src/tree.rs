//! The message tree of a topic: which branch is shown, and where each message sits among its
//! siblings ("‹ 2/3 ›"). Works on the topic's messages loaded in one query.

use std::collections::HashMap;

use crate::domain::Message;
use crate::id::MessageId;

/// A message on the visible branch with its place among its siblings.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchEntry {
    pub message: Message,
    /// 1-based position among the children of the same parent.
    pub sibling_index: usize,
    pub sibling_count: usize,
    pub previous_sibling: Option<MessageId>,
    pub next_sibling: Option<MessageId>,
}

/// An index over one topic's messages.
pub struct MessageTree<'a> {
    messages: &'a [Message],
    by_id: HashMap<MessageId, usize>,
    /// Children of each parent (`None` = roots), in creation order.
    children: HashMap<Option<MessageId>, Vec<usize>>,
}

impl<'a> MessageTree<'a> {
    /// `messages` must be in creation order, as `MessageStore::list_messages` returns them.
    pub fn new(messages: &'a [Message]) -> Self {
        let mut by_id = HashMap::with_capacity(messages.len());
        let mut children: HashMap<Option<MessageId>, Vec<usize>> = HashMap::new();
        for (index, message) in messages.iter().enumerate() {
            by_id.insert(message.id, index);
            children.entry(message.parent_id).or_default().push(index);
        }
        Self { messages, by_id, children }
    }

    pub fn get(&self, id: MessageId) -> Option<&'a Message> {
        self.by_id.get(&id).map(|&index| &self.messages[index])
    }

    /// The most recently created leaf under `id` (or `id` itself). Children are always created
    /// after their parent, so the newest descendant has no children of its own. (Newest by
    /// place in the creation-ordered list: imported rows' ids are not time-ordered.)
    pub fn latest_leaf_under(&self, id: MessageId) -> MessageId {
        let Some(&start) = self.by_id.get(&id) else {
            return id;
        };
        let mut newest = start;
        let mut stack = vec![id];
        let mut seen = 0;
        while let Some(parent) = stack.pop() {
            for &child in self.children.get(&Some(parent)).map(Vec::as_slice).unwrap_or_default() {
                newest = newest.max(child);
                stack.push(self.messages[child].id);
            }
            seen += 1;
            if seen > self.messages.len() {
                break; // a cycle (a corrupted store)
            }
        }
        self.messages[newest].id
    }

    /// The branch from a root to `leaf`. An unknown or absent leaf falls back to the newest
    /// message, so a topic always shows its latest branch.
    pub fn branch(&self, leaf: Option<MessageId>) -> Vec<BranchEntry> {
        let Some(last) = leaf.and_then(|id| self.by_id.get(&id).copied()).or_else(|| self.newest_index()) else {
            return Vec::new();
        };
        let mut path = Vec::new();
        let mut cursor = Some(last);
        while let Some(index) = cursor {
            path.push(index);
            cursor = self.messages[index].parent_id.and_then(|parent| self.by_id.get(&parent).copied());
            if path.len() > self.messages.len() {
                break; // A cycle can only come from a corrupted store; show what we have.
            }
        }
        path.reverse();
        path.into_iter().map(|index| self.entry(index)).collect()
    }

    fn newest_index(&self) -> Option<usize> {
        self.messages.len().checked_sub(1)
    }

    fn entry(&self, index: usize) -> BranchEntry {
        let message = &self.messages[index];
        let siblings = self.children.get(&message.parent_id).map(Vec::as_slice).unwrap_or_default();
        let position = siblings.iter().position(|&sibling| sibling == index).unwrap_or(0);
        BranchEntry {
            message: message.clone(),
            sibling_index: position + 1,
            sibling_count: siblings.len().max(1),
            previous_sibling: position.checked_sub(1).map(|p| self.messages[siblings[p]].id),
            next_sibling: siblings.get(position + 1).map(|&n| self.messages[n].id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MessageRole, MessageStatus};
    use crate::id::{TopicId, UserId};
    use crate::time::Timestamp;

    fn message(parent: Option<MessageId>, role: MessageRole) -> Message {
        Message {
            id: MessageId::new(),
            user_id: UserId::new(),
            topic_id: TopicId::new(),
            parent_id: parent,
            role,
            content: String::new(),
            reasoning: String::new(),
            status: MessageStatus::Complete,
            error_kind: None,
            error_message: None,
            provider: None,
            model: None,
            usage: None,
            ttft_ms: None,
            duration_ms: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn branches_and_siblings() {
        let question = message(None, MessageRole::User);
        let answer_one = message(Some(question.id), MessageRole::Assistant);
        let follow_up = message(Some(answer_one.id), MessageRole::User);
        let answer_two = message(Some(question.id), MessageRole::Assistant);
        let messages = vec![question.clone(), answer_one.clone(), follow_up.clone(), answer_two.clone()];
        let tree = MessageTree::new(&messages);

        let latest = tree.branch(None);
        assert_eq!(latest.iter().map(|e| e.message.id).collect::<Vec<_>>(), [question.id, answer_two.id]);
        assert_eq!((latest[1].sibling_index, latest[1].sibling_count), (2, 2));
        assert_eq!(latest[1].previous_sibling, Some(answer_one.id));
        assert_eq!(latest[1].next_sibling, None);

        let older = tree.branch(Some(tree.latest_leaf_under(answer_one.id)));
        assert_eq!(older.iter().map(|e| e.message.id).collect::<Vec<_>>(), [question.id, answer_one.id, follow_up.id]);
        assert_eq!((older[1].sibling_index, older[1].sibling_count), (1, 2));
        assert_eq!(tree.latest_leaf_under(question.id), answer_two.id);
        assert!(MessageTree::new(&[]).branch(None).is_empty());
    }
}
