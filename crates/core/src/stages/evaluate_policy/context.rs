//! The judge's context: the last few messages of each conversation, remembered as the items
//! stream past.

use std::collections::{HashMap, VecDeque};

use crate::model::Item;

/// Conversations whose recent messages are remembered for context; past this many the memory
/// starts afresh, so a log of a million one-line conversations costs no more than a small one.
const CONTEXT_CONVERSATIONS: usize = 1_024;

/// Characters of an earlier message kept as context: enough for the judge to follow the
/// conversation, and the window's memory stays a few MiB however long the messages are.
const CONTEXT_CHARS: usize = 1_000;

/// The last few messages of each conversation, as they stream past, for the judge's context.
/// Items without a conversation (a plain TXT log) get none: their neighbours may be unrelated.
pub(super) struct ContextWindow {
    per_conversation: usize,
    recent: HashMap<String, VecDeque<Item>>,
}

impl ContextWindow {
    pub(super) fn new(per_conversation: usize) -> Self {
        ContextWindow {
            per_conversation,
            recent: HashMap::new(),
        }
    }

    /// Up to `n` earlier items of `item`'s conversation, oldest first.
    pub(super) fn before(&self, item: &Item) -> Vec<Item> {
        item.conversation
            .as_deref()
            .and_then(|c| self.recent.get(c))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Remember `item` (what a prompt shows of it: id, user, text).
    pub(super) fn push(&mut self, item: &Item) {
        let Some(conv) = item.conversation.as_deref() else {
            return;
        };
        if self.per_conversation == 0 {
            return;
        }
        if !self.recent.contains_key(conv) && self.recent.len() >= CONTEXT_CONVERSATIONS {
            self.recent.clear();
        }
        let q = self.recent.entry(conv.to_string()).or_default();
        if q.len() == self.per_conversation {
            q.pop_front();
        }
        let text: String = item.text.chars().take(CONTEXT_CHARS).collect();
        let mut slim = Item::new(item.id.clone(), text);
        slim.user.clone_from(&item.user);
        slim.conversation = Some(conv.to_string());
        q.push_back(slim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(id: &str, conversation: Option<&str>, text: &str) -> Item {
        let mut item = Item::new(id, text);
        item.conversation = conversation.map(str::to_string);
        item
    }

    #[test]
    fn context_is_the_last_messages_of_the_same_conversation_oldest_first() {
        let mut window = ContextWindow::new(2);
        for (id, conv) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("a3", "a")] {
            window.push(&said(id, Some(conv), "hi"));
        }
        let ids: Vec<String> = window
            .before(&said("a4", Some("a"), "x"))
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["a2", "a3"]);
        // A line of no conversation gets no context, and is not remembered.
        window.push(&said("n1", None, "hi"));
        assert!(window.before(&said("n2", None, "x")).is_empty());
    }

    #[test]
    fn remembered_messages_are_cut_and_none_are_kept_when_context_is_off() {
        let mut window = ContextWindow::new(1);
        window.push(&said("a1", Some("a"), &"é".repeat(CONTEXT_CHARS + 5)));
        let kept = window.before(&said("a2", Some("a"), "x"));
        assert_eq!(kept[0].text.chars().count(), CONTEXT_CHARS);
        let mut off = ContextWindow::new(0);
        off.push(&said("a1", Some("a"), "hi"));
        assert!(off.before(&said("a2", Some("a"), "x")).is_empty());
    }
}
