//! Word search in memory: an inverted index (term → (document, position) postings) whose terms
//! are SQLite FTS5's own (`unicode61` tokenizer: case folded, diacritics removed), read back
//! through `fts5vocab` at startup, and a query with FTS5's meaning: each word a phrase, all
//! phrases required, the last one matching as a prefix.
//!
//! Why not FTS5 at request time: one in-memory FTS5 database is one connection, so concurrent
//! searches queued behind a mutex (16 clients: p95 330 ms on 2 cores; BENCHMARKS.md,
//! 2026-12-01). A query here is a few binary searches and a bitset per word, read-only and
//! shared by every thread.

use rusqlite::Connection;

use crate::error::WebResult;

/// What a document is: a unit or a protein, by atlas and position in that atlas's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Doc {
    Unit { atlas: u32, row: u32 },
    Protein { atlas: u32, row: u32 },
}

/// Collects documents at startup through an in-memory FTS5 table (used for tokenizing only).
pub(crate) struct TextIndexBuilder {
    fts: Connection,
    docs: Vec<Doc>,
}

/// The finished index, shared read-only.
pub(crate) struct TextIndex {
    /// Sorted, so a prefix's terms are a contiguous range.
    terms: Vec<String>,
    /// Per term: (document, token position), sorted.
    postings: Vec<Vec<(u32, u32)>>,
    docs: Vec<Doc>,
}

/// Words of a search: at most this many are used (as before, when FTS5 answered).
const MAX_WORDS: usize = 8;

/// A parsed search: phrases of folded tokens; `prefix` on the last word's phrase.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TextQuery {
    phrases: Vec<(Vec<String>, bool)>,
}

const FTS_SCHEMA: &str = "CREATE VIRTUAL TABLE t USING fts5(text);
     CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance');";

impl TextIndexBuilder {
    pub fn new() -> WebResult<Self> {
        let fts = Connection::open_in_memory()?;
        fts.execute_batch(FTS_SCHEMA)?;
        fts.execute_batch("BEGIN")?;
        Ok(TextIndexBuilder {
            fts,
            docs: Vec::new(),
        })
    }

    pub fn add(&mut self, doc: Doc, text: &str) -> WebResult<()> {
        let id = self.docs.len() as i64;
        self.fts
            .prepare_cached("INSERT INTO t (rowid, text) VALUES (?1, ?2)")?
            .execute(rusqlite::params![id, text])?;
        self.docs.push(doc);
        Ok(())
    }

    /// Reads every token instance back from FTS5 and builds the postings.
    pub fn finish(self) -> WebResult<TextIndex> {
        self.fts.execute_batch("COMMIT")?;
        let mut terms: Vec<String> = Vec::new();
        let mut postings: Vec<Vec<(u32, u32)>> = Vec::new();
        {
            // fts5vocab's instance table iterates term by term.
            let mut st = self.fts.prepare("SELECT term, doc, offset FROM v")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let term = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
                if terms.last().map(String::as_str) != Some(term) {
                    terms.push(term.to_string());
                    postings.push(Vec::new());
                }
                let (doc, offset): (i64, i64) = (r.get(1)?, r.get(2)?);
                if let Some(p) = postings.last_mut() {
                    p.push((doc as u32, offset as u32));
                }
            }
        }
        // Sorted and each term once, whatever order the vocabulary table used.
        let mut order: Vec<usize> = (0..terms.len()).collect();
        order.sort_by(|&a, &b| terms[a].cmp(&terms[b]));
        let mut sorted_terms: Vec<String> = Vec::with_capacity(terms.len());
        let mut sorted_postings: Vec<Vec<(u32, u32)>> = Vec::with_capacity(terms.len());
        for i in order {
            let p = std::mem::take(&mut postings[i]);
            if sorted_terms.last() == Some(&terms[i]) {
                if let Some(last) = sorted_postings.last_mut() {
                    last.extend(p);
                }
            } else {
                sorted_terms.push(std::mem::take(&mut terms[i]));
                sorted_postings.push(p);
            }
        }
        for p in &mut sorted_postings {
            p.sort_unstable();
        }
        Ok(TextIndex {
            terms: sorted_terms,
            postings: sorted_postings,
            docs: self.docs,
        })
    }
}

/// FTS5 `unicode61` tokens of `text`: for ASCII text directly (letters and digits are token
/// characters, folded to lower case; all else separates), otherwise through FTS5 itself.
pub(crate) fn tokens(text: &str) -> WebResult<Vec<String>> {
    if text.is_ascii() {
        return Ok(text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(str::to_ascii_lowercase)
            .collect());
    }
    let c = Connection::open_in_memory()?;
    c.execute_batch(FTS_SCHEMA)?;
    c.execute("INSERT INTO t (text) VALUES (?1)", [text])?;
    let mut st = c.prepare("SELECT term FROM v ORDER BY offset")?;
    let out = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(out)
}

impl TextQuery {
    /// Each word (split at white space and `"`; words without a letter or digit dropped; at
    /// most 8) becomes a phrase of its tokens, the last one a prefix. `None` when no word is
    /// left. Words whose characters all separate tokens are ignored, as FTS5 ignores an empty
    /// phrase.
    pub fn parse(text: &str) -> WebResult<Option<TextQuery>> {
        let words: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || c == '"')
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .take(MAX_WORDS)
            .collect();
        if words.is_empty() {
            return Ok(None);
        }
        let last = words.len() - 1;
        let mut phrases = Vec::new();
        for (i, w) in words.iter().enumerate() {
            let t = tokens(w)?;
            if !t.is_empty() {
                phrases.push((t, i == last));
            }
        }
        Ok(Some(TextQuery { phrases }))
    }
}

/// A set of documents.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: u32) {
        self.0[i as usize / 64] |= 1 << (i % 64);
    }
    fn and(&mut self, other: &Bits) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a &= b);
    }
    fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            (0..64)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| (w * 64 + b) as u32)
        })
    }
}

impl TextIndex {
    /// The terms equal to `token`, or starting with it when `prefix`.
    fn range(&self, token: &str, prefix: bool) -> std::ops::Range<usize> {
        let start = self.terms.partition_point(|t| t.as_str() < token);
        let len = if prefix {
            self.terms[start..].partition_point(|t| t.starts_with(token))
        } else {
            usize::from(self.terms.get(start).is_some_and(|t| t == token))
        };
        start..start + len
    }

    /// (document, position) of every instance of the terms in `range`, sorted.
    fn instances(&self, range: std::ops::Range<usize>) -> std::borrow::Cow<'_, [(u32, u32)]> {
        if range.len() == 1 {
            return std::borrow::Cow::Borrowed(&self.postings[range.start]);
        }
        let mut all: Vec<(u32, u32)> = self.postings[range].iter().flatten().copied().collect();
        all.sort_unstable();
        std::borrow::Cow::Owned(all)
    }

    /// Documents holding the tokens of a phrase at consecutive positions.
    fn phrase(&self, tokens: &[String], prefix: bool) -> Bits {
        let mut bits = Bits::new(self.docs.len());
        let last = tokens.len() - 1;
        let range = |i: usize| self.range(&tokens[i], prefix && i == last);
        if tokens.len() == 1 {
            for p in &self.postings[range(0)] {
                for &(doc, _) in p {
                    bits.set(doc);
                }
            }
            return bits;
        }
        let each: Vec<_> = (0..tokens.len())
            .map(|i| self.instances(range(i)))
            .collect();
        // Walk the rarest token's instances (a GO id's number, not the "go" before every id)
        // and look the others up around each.
        let anchor = (0..each.len()).min_by_key(|&i| each[i].len()).unwrap_or(0);
        for &(doc, position) in each[anchor].iter() {
            let Some(start) = position.checked_sub(anchor as u32) else {
                continue;
            };
            let follows = (0..tokens.len())
                .all(|i| i == anchor || each[i].binary_search(&(doc, start + i as u32)).is_ok());
            if follows {
                bits.set(doc);
            }
        }
        bits
    }

    /// Documents matching every phrase, in the order they were added.
    pub fn search(&self, query: &TextQuery) -> Vec<Doc> {
        let mut phrases = query.phrases.iter();
        let Some((first, prefix)) = phrases.next() else {
            return Vec::new();
        };
        let mut bits = self.phrase(first, *prefix);
        for (tokens, prefix) in phrases {
            bits.and(&self.phrase(tokens, *prefix));
        }
        bits.ones().map(|d| self.docs[d as usize]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(texts: &[&str]) -> TextIndex {
        let mut b = TextIndexBuilder::new().unwrap();
        for (i, t) in texts.iter().enumerate() {
            b.add(
                Doc::Unit {
                    atlas: 0,
                    row: i as u32,
                },
                t,
            )
            .unwrap();
        }
        b.finish().unwrap()
    }

    fn rows(index: &TextIndex, q: &str) -> Vec<u32> {
        let query = TextQuery::parse(q).unwrap().unwrap();
        index
            .search(&query)
            .into_iter()
            .map(|d| match d {
                Doc::Unit { row, .. } | Doc::Protein { row, .. } => row,
            })
            .collect()
    }

    /// The same texts and queries answered by FTS5 itself, as the server did before.
    fn fts5(texts: &[&str], q: &str) -> Vec<u32> {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE VIRTUAL TABLE s USING fts5(text)")
            .unwrap();
        for (i, t) in texts.iter().enumerate() {
            c.execute(
                "INSERT INTO s (rowid, text) VALUES (?1, ?2)",
                rusqlite::params![i as i64, t],
            )
            .unwrap();
        }
        let words: Vec<String> = q
            .split(|c: char| c.is_whitespace() || c == '"')
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .take(8)
            .map(|w| format!("\"{w}\""))
            .collect();
        let query = format!("{}*", words.join(" "));
        let mut st = c
            .prepare("SELECT rowid FROM s WHERE s MATCH ?1 ORDER BY rowid")
            .unwrap();
        st.query_map([query], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|r| r.unwrap() as u32)
            .collect()
    }

    #[test]
    fn answers_as_fts5_did() {
        let texts = [
            "GO:0000003 synthetic process 3 of kind 3 PF00012 Synthetic description of unit 7: binds motif 7",
            "GO:0000013 reproduction GO:0000031 binds-motif 5 PF00300",
            "Café au lait β-Lactamase TEM naïve İstanbul",
            "P00042 PF00001 PF00002 Outer membrane protein A ompA",
            "motif binds 55 unit 501",
            "",
        ];
        for q in [
            "GO:0000003",
            "GO%3A0000003",
            "go:00000",
            "binds motif 5",
            "binds-motif",
            "motif binds",
            "BINDS",
            "b",
            "cafe",
            "CAFÉ",
            "naive lactamase",
            "β",
            "outer membrane ompa",
            "P00042",
            "\"unbalanced",
            "NEAR(a b) OR *",
            "' OR 1=1; DROP TABLE units;--",
            "a*b",
            "ः binds",
            "binds ः",
            "ः",
            "x y z w v u t s r q",
        ] {
            assert_eq!(rows(&index(&texts), q), fts5(&texts, q), "query {q:?}");
        }
    }

    #[test]
    fn a_query_without_words_is_none() {
        assert_eq!(TextQuery::parse(" \" * - ").unwrap(), None);
        assert!(TextQuery::parse("GO:1").unwrap().is_some());
    }
}
