//! The classification keywords, compiled once per config into one automaton, and
//! matched over a prompt in one pass: whole words and phrases, or word beginnings for a
//! keyword ending in `*`.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::config::ClassifyRules;

/// Which list a keyword comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Complex,
    Medium,
    Simple,
    Question,
    Scope,
}

struct Keyword {
    group: Group,
    /// Matches a word's beginning (`summar*`), not only a whole word.
    prefix: bool,
}

pub struct Phrases {
    automaton: Option<AhoCorasick>,
    keywords: Vec<Keyword>,
}

/// The first keyword of each group found in a prompt, as written there.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Found {
    pub complex: Option<String>,
    pub medium: Option<String>,
    pub simple: Option<String>,
    pub question: Option<String>,
    pub scope: Option<String>,
}

impl Found {
    fn slot(&mut self, group: Group) -> &mut Option<String> {
        match group {
            Group::Complex => &mut self.complex,
            Group::Medium => &mut self.medium,
            Group::Simple => &mut self.simple,
            Group::Question => &mut self.question,
            Group::Scope => &mut self.scope,
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Phrases {
    pub fn new(rules: &ClassifyRules) -> Phrases {
        let lists = [
            (Group::Complex, &rules.complex_keywords),
            (Group::Medium, &rules.medium_keywords),
            (Group::Simple, &rules.simple_keywords),
            (Group::Question, &rules.question_keywords),
            (Group::Scope, &rules.scope_keywords),
        ];
        let mut patterns = Vec::new();
        let mut keywords = Vec::new();
        for (group, list) in lists {
            for word in list {
                let word = word.trim().to_lowercase();
                let (text, prefix) = match word.strip_suffix('*') {
                    Some(stem) => (stem.to_owned(), true),
                    None => (word, false),
                };
                if text.is_empty() {
                    continue;
                }
                patterns.push(text);
                keywords.push(Keyword { group, prefix });
            }
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .ok();
        Phrases {
            automaton,
            keywords,
        }
    }

    /// The keywords of `prompt` (lower-cased), the first of each group.
    pub fn find(&self, prompt: &str) -> Found {
        let mut found = Found::default();
        let Some(automaton) = &self.automaton else {
            return found;
        };
        for hit in automaton.find_overlapping_iter(prompt) {
            let Some(keyword) = self.keywords.get(hit.pattern().as_usize()) else {
                continue;
            };
            let before = prompt[..hit.start()].chars().next_back();
            let after = prompt[hit.end()..].chars().next();
            let starts_word = before.is_none_or(|c| !is_word(c));
            let ends_word = keyword.prefix || after.is_none_or(|c| !is_word(c));
            if !(starts_word && ends_word) {
                continue;
            }
            let slot = found.slot(keyword.group);
            if slot.is_none() {
                // The whole word as written: "summarize" for `summar*`.
                let end = prompt[hit.end()..]
                    .find(|c: char| !is_word(c) && c != '-')
                    .map_or(prompt.len(), |n| hit.end() + n);
                *slot = Some(prompt[hit.start()..end].to_owned());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_and_word_beginnings() {
        let phrases = Phrases::new(&ClassifyRules::default());
        let found = phrases.find("please summarize this; the designer said hi");
        assert_eq!(found.simple.as_deref(), Some("summarize"));
        assert_eq!(found.complex, None, "designer is not design");
        assert_eq!(
            phrases.find("this history").simple,
            None,
            "hi only as a word"
        );
        assert_eq!(phrases.find("add pagination to list_users").simple, None);
        assert_eq!(
            phrases.find("refactor across all files").scope.as_deref(),
            Some("across")
        );
    }
}
