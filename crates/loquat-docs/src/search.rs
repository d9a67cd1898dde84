//! Keyword search over chunks: BM25 over terms that work for Chinese and English alike.
//!
//! Terms: Latin, Cyrillic… words are lower-cased and stemmed (English Snowball: `growing` and
//! `grows` find each other), common English words left out; Chinese, Japanese and Korean text, which has no spaces, becomes overlapping character
//! pairs (`研发投入` → `研发`, `发投`, `投入`), the standard dictionary-free approach of search
//! engines: any word of two or more characters in a query matches wherever it occurs, without a
//! dictionary to load or keep up to date. Numbers are terms as written.

use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};

/// Chinese, Japanese and Korean characters (ideographs, kana, hangul).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // hiragana, katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // hangul syllables
        | 0xF900..=0xFAFF    // compatibility ideographs
        | 0x20000..=0x2FA1F  // extensions B–F, compatibility supplement
    )
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "did", "do", "does", "for", "from", "had", "has", "have",
    "how", "i", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "so", "than", "that", "the",
    "their", "then", "there", "these", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which",
    "who", "why", "will", "with", "you", "your",
];

/// Cuts text into search terms; one per thread of use, cheap to make.
pub struct Tokenizer {
    stemmer: Stemmer,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self { stemmer: Stemmer::create(Algorithm::English) }
    }
}

/// Longer runs of letters are not words (base64, hashes): left out.
const MAX_WORD_BYTES: usize = 48;

impl Tokenizer {
    /// Calls `term` for each term of `text`, in order.
    pub fn terms(&self, text: &str, mut term: impl FnMut(&str)) {
        let mut word = String::new();
        let mut previous_cjk: Option<char> = None;
        let mut run = 0usize;
        let mut pair = String::with_capacity(8);
        let end_cjk_run = |previous: &mut Option<char>, run: &mut usize, term: &mut dyn FnMut(&str)| {
            if *run == 1
                && let Some(single) = *previous
            {
                let mut buffer = [0u8; 4];
                term(single.encode_utf8(&mut buffer));
            }
            *previous = None;
            *run = 0;
        };
        for c in text.chars() {
            if is_cjk(c) {
                self.end_word(&mut word, &mut term);
                if let Some(before) = previous_cjk {
                    pair.clear();
                    pair.push(before);
                    pair.push(c);
                    term(&pair);
                }
                previous_cjk = Some(c);
                run += 1;
            } else if c.is_alphanumeric() {
                end_cjk_run(&mut previous_cjk, &mut run, &mut term);
                word.extend(c.to_lowercase());
            } else {
                end_cjk_run(&mut previous_cjk, &mut run, &mut term);
                // `don't`, `R&D`-like joins are split; a decimal point keeps a number whole.
                if c == '.' && word.chars().last().is_some_and(|last| last.is_ascii_digit()) {
                    word.push(c);
                    continue;
                }
                self.end_word(&mut word, &mut term);
            }
        }
        end_cjk_run(&mut previous_cjk, &mut run, &mut term);
        self.end_word(&mut word, &mut term);
    }

    fn end_word(&self, word: &mut String, term: &mut dyn FnMut(&str)) {
        let trimmed = word.trim_end_matches('.');
        if !trimmed.is_empty() && trimmed.len() <= MAX_WORD_BYTES && !STOP_WORDS.contains(&trimmed) {
            if trimmed.bytes().all(|b| b.is_ascii_alphabetic()) {
                term(&self.stemmer.stem(trimmed));
            } else {
                term(trimmed);
            }
        }
        word.clear();
    }

    /// The terms of `text` as owned strings.
    pub fn collect(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.terms(text, |term| out.push(term.to_owned()));
        out
    }
}

/// BM25's usual constants.
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// A term's postings: the documents it occurs in (ascending) and how often in each.
#[derive(Default)]
struct Postings {
    docs: Vec<u32>,
    counts: Vec<u16>,
}

/// An in-memory BM25 index over documents numbered in the order they were added.
#[derive(Default)]
pub struct Index {
    terms: HashMap<Box<str>, Postings>,
    lengths: Vec<u32>,
    total_length: u64,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn build<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let tokenizer = Tokenizer::default();
        let mut index = Self::new();
        for text in texts {
            index.add(&tokenizer, text);
        }
        index
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Adds a document; returns its number.
    pub fn add(&mut self, tokenizer: &Tokenizer, text: &str) -> u32 {
        let doc = self.lengths.len() as u32;
        let mut counts: HashMap<String, u16> = HashMap::new();
        let mut length = 0u32;
        tokenizer.terms(text, |term| {
            length += 1;
            match counts.get_mut(term) {
                Some(count) => *count = count.saturating_add(1),
                None => {
                    counts.insert(term.to_owned(), 1);
                }
            }
        });
        for (term, count) in counts {
            let postings = match self.terms.get_mut(term.as_str()) {
                Some(postings) => postings,
                None => self.terms.entry(term.into_boxed_str()).or_default(),
            };
            postings.docs.push(doc);
            postings.counts.push(count);
        }
        self.lengths.push(length);
        self.total_length += u64::from(length);
        doc
    }

    /// The best `limit` documents for `query`, best first, with their scores. Documents that
    /// share no term with the query are not returned.
    pub fn search(&self, tokenizer: &Tokenizer, query: &str, limit: usize) -> Vec<(u32, f32)> {
        if self.lengths.is_empty() || limit == 0 {
            return Vec::new();
        }
        let mut query_terms = tokenizer.collect(query);
        query_terms.sort_unstable();
        query_terms.dedup();
        let n = self.lengths.len() as f32;
        let average = (self.total_length as f32 / n).max(1.0);
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for term in &query_terms {
            let Some(postings) = self.terms.get(term.as_str()) else { continue };
            let df = postings.docs.len() as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for (&doc, &count) in postings.docs.iter().zip(&postings.counts) {
                let tf = f32::from(count);
                let length = self.lengths[doc as usize] as f32;
                let score = idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / average));
                *scores.entry(doc).or_insert(0.0) += score;
            }
        }
        top(scores.into_iter(), limit)
    }

    /// Bytes the index holds, about.
    pub fn memory_bytes(&self) -> usize {
        let postings: usize = self
            .terms
            .iter()
            .map(|(term, postings)| term.len() + 48 + postings.docs.capacity() * 4 + postings.counts.capacity() * 2)
            .sum();
        postings + self.lengths.capacity() * 4
    }
}

/// The `limit` highest-scoring entries, best first (ties by document number).
pub fn top(scores: impl Iterator<Item = (u32, f32)>, limit: usize) -> Vec<(u32, f32)> {
    let mut all: Vec<(u32, f32)> = scores.collect();
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if all.len() > limit {
        all.select_nth_unstable_by(limit - 1, order);
        all.truncate(limit);
    }
    all.sort_unstable_by(order);
    all
}

/// Reciprocal rank fusion of ranked lists (each best first): a document's score is the sum over
/// lists of `1 / (k + rank)`. Keyword and vector scores are not comparable; ranks are.
pub fn reciprocal_rank_fusion(lists: &[Vec<u32>], k: f32, limit: usize) -> Vec<(u32, f32)> {
    let mut scores: HashMap<u32, f32> = HashMap::new();
    for list in lists {
        for (rank, &doc) in list.iter().enumerate() {
            *scores.entry(doc).or_insert(0.0) += 1.0 / (k + rank as f32 + 1.0);
        }
    }
    top(scores.into_iter(), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_becomes_pairs_and_english_stems() {
        let tokenizer = Tokenizer::default();
        assert_eq!(tokenizer.collect("研发投入"), ["研发", "发投", "投入"]);
        assert_eq!(tokenizer.collect("The spending grows, growing 3.5%"), ["spend", "grow", "grow", "3.5"]);
        assert_eq!(tokenizer.collect("税 2023年研发"), ["税", "2023", "年研", "研发"]);
    }

    #[test]
    fn bm25_ranks_the_matching_chunk_first() {
        let docs = [
            "公司2023年研发投入为12亿元，同比增长15%。",
            "Sales were flat across all regions in 2023.",
            "Research and development spending grew by 15 percent.",
            "员工人数增加到三千人。",
        ];
        let index = Index::build(docs);
        let tokenizer = Tokenizer::default();
        assert_eq!(index.search(&tokenizer, "研发投入增长了多少", 2)[0].0, 0);
        assert_eq!(index.search(&tokenizer, "how much did development spending grow", 2)[0].0, 2);
        assert!(index.search(&tokenizer, "天气", 5).is_empty());
    }

    #[test]
    fn fusion_prefers_documents_both_lists_rank() {
        let fused = reciprocal_rank_fusion(&[vec![1, 2, 3], vec![3, 1, 4]], 60.0, 3);
        assert_eq!(fused[0].0, 1);
        assert_eq!(fused[1].0, 3);
    }
}
