//! GO ontology files in OBO 1.2: `[Term]` stanzas with their ids, names, namespaces, `is_a`,
//! typed `relationship:` links, `alt_id`, `is_obsolete`, `replaced_by`, `consider` and `subset`.
//! `[Typedef]` and other stanzas are skipped (counted).
//!
//! After reading, the document is checked: every parent named by `is_a` or `relationship:` must
//! be a `[Term]` of the file, and `is_a` plus `part_of` must be acyclic; errors name the term and
//! the line of the offending tag.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{BioError, Result};
use crate::ids::GoId;
use crate::input::{open_text, Lines};

/// Relationship types used by GO's `relationship:` tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RelationType {
    PartOf,
    Regulates,
    PositivelyRegulates,
    NegativelyRegulates,
    HasPart,
    OccursIn,
    /// Any other relation, by its OBO id.
    Other(String),
}

impl RelationType {
    pub fn from_obo(text: &str) -> RelationType {
        match text {
            "part_of" => RelationType::PartOf,
            "regulates" => RelationType::Regulates,
            "positively_regulates" => RelationType::PositivelyRegulates,
            "negatively_regulates" => RelationType::NegativelyRegulates,
            "has_part" => RelationType::HasPart,
            "occurs_in" => RelationType::OccursIn,
            other => RelationType::Other(other.to_string()),
        }
    }

    pub fn obo_name(&self) -> &str {
        match self {
            RelationType::PartOf => "part_of",
            RelationType::Regulates => "regulates",
            RelationType::PositivelyRegulates => "positively_regulates",
            RelationType::NegativelyRegulates => "negatively_regulates",
            RelationType::HasPart => "has_part",
            RelationType::OccursIn => "occurs_in",
            RelationType::Other(name) => name,
        }
    }
}

/// A typed `relationship:` link to another term.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Relationship {
    pub relation: RelationType,
    pub target: GoId,
}

/// One `[Term]` stanza.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OboTerm {
    pub id: GoId,
    pub name: String,
    /// The `namespace:` value as written (`biological_process`...).
    pub namespace: String,
    pub is_a: Vec<GoId>,
    pub relationships: Vec<Relationship>,
    pub alt_ids: Vec<GoId>,
    pub is_obsolete: bool,
    pub replaced_by: Vec<GoId>,
    /// Suggested replacements; may name other ontologies (`CL:0000000`), so kept as text.
    pub consider: Vec<String>,
    /// `subset:` tags, e.g. `goslim_generic`.
    pub subsets: Vec<String>,
    /// 1-based line of the `[Term]` header.
    pub line: usize,
}

/// A parsed and checked OBO file.
#[derive(Clone, Debug, Default)]
pub struct OboDocument {
    /// The name used in error messages (the path for files).
    pub source: PathBuf,
    pub format_version: Option<String>,
    pub data_version: Option<String>,
    pub terms: Vec<OboTerm>,
    /// `[Typedef]` and other non-`[Term]` stanzas skipped.
    pub skipped_stanzas: usize,
}

/// A parent link with the line that declared it, kept for error messages.
struct ParentLink {
    term: usize,
    parent: GoId,
    relation: String,
    line: usize,
}

impl OboDocument {
    /// Reads and checks a plain or gzip-compressed OBO file.
    pub fn open(path: impl AsRef<Path>) -> Result<OboDocument> {
        let path = path.as_ref();
        OboDocument::read(open_text(path)?, path)
    }

    /// Reads and checks OBO text from `reader`; `name` is used in error messages.
    pub fn read<R: BufRead>(reader: R, name: impl Into<PathBuf>) -> Result<OboDocument> {
        let mut lines = Lines::new(reader, name.into());
        let mut document = OboDocument {
            source: lines.file().to_path_buf(),
            ..Default::default()
        };
        let mut links = Vec::new();
        // Whether each [Term] stanza has had its `id:` line yet.
        let mut has_id: Vec<bool> = Vec::new();
        let mut in_term = false;
        let mut in_header = true;
        while lines.advance()? {
            let text = lines.text().trim();
            if text.is_empty() || text.starts_with('!') {
                continue;
            }
            if text.starts_with('[') {
                in_header = false;
                in_term = text == "[Term]";
                if in_term {
                    document.terms.push(OboTerm::empty(lines.line_number()));
                    has_id.push(false);
                } else {
                    document.skipped_stanzas += 1;
                }
                continue;
            }
            let Some((tag, value)) = text.split_once(':') else {
                return Err(lines.malformed(
                    format!("'{text}' is not a 'tag: value' line"),
                    "fix the line",
                ));
            };
            let value = value.trim();
            if in_header {
                match tag {
                    "format-version" => document.format_version = Some(value.to_string()),
                    "data-version" => document.data_version = Some(value.to_string()),
                    _ => {}
                }
            } else if in_term {
                let term_index = document.terms.len() - 1;
                let term = &mut document.terms[term_index];
                has_id[term_index] |= tag == "id";
                if let Some((parent, relation)) = read_term_tag(term, tag, value, &lines)? {
                    links.push(ParentLink {
                        term: term_index,
                        parent,
                        relation,
                        line: lines.line_number(),
                    });
                }
            }
        }
        if let Some(missing) = has_id.iter().position(|&has| !has) {
            return Err(BioError::malformed(
                &document.source,
                document.terms[missing].line,
                "[Term] stanza has no id",
                "add an 'id: GO:nnnnnnn' line",
            ));
        }
        document.check(&links)?;
        Ok(document)
    }

    /// Duplicate ids, dangling parents and is_a/part_of cycles.
    fn check(&self, links: &[ParentLink]) -> Result<()> {
        let mut index_of: HashMap<GoId, usize> = HashMap::with_capacity(self.terms.len());
        for (index, term) in self.terms.iter().enumerate() {
            if let Some(&first) = index_of.get(&term.id) {
                return Err(BioError::DuplicateTerm {
                    file: self.source.clone(),
                    line: term.line,
                    term: term.id.to_string(),
                    first_line: self.terms[first].line,
                });
            }
            index_of.insert(term.id, index);
        }
        for link in links {
            if !index_of.contains_key(&link.parent) {
                return Err(BioError::DanglingParent {
                    file: self.source.clone(),
                    line: link.line,
                    term: self.terms[link.term].id.to_string(),
                    parent: link.parent.to_string(),
                    relation: link.relation.clone(),
                });
            }
        }
        // Cycles over the two relations the DAG follows.
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); self.terms.len()];
        let hierarchy: Vec<&ParentLink> = links
            .iter()
            .filter(|link| link.relation == "is_a" || link.relation == "part_of")
            .collect();
        for link in &hierarchy {
            parents[link.term].push(index_of[&link.parent]);
        }
        if let Some(cycle) = crate::graph::find_cycle(&parents) {
            let (first, second) = (cycle[0], cycle[1 % cycle.len()]);
            let line = hierarchy
                .iter()
                .find(|link| link.term == first && index_of[&link.parent] == second)
                .map_or(self.terms[first].line, |link| link.line);
            return Err(BioError::Cycle {
                file: self.source.clone(),
                line,
                terms: cycle
                    .iter()
                    .map(|&t| self.terms[t].id.to_string())
                    .collect(),
            });
        }
        Ok(())
    }
}

impl OboTerm {
    fn empty(line: usize) -> OboTerm {
        OboTerm {
            id: GoId(0),
            name: String::new(),
            namespace: String::new(),
            is_a: Vec::new(),
            relationships: Vec::new(),
            alt_ids: Vec::new(),
            is_obsolete: false,
            replaced_by: Vec::new(),
            consider: Vec::new(),
            subsets: Vec::new(),
            line,
        }
    }
}

/// Applies one tag of a `[Term]` stanza; returns the parent link it declares, if any.
fn read_term_tag<R: BufRead>(
    term: &mut OboTerm,
    tag: &str,
    value: &str,
    lines: &Lines<R>,
) -> Result<Option<(GoId, String)>> {
    let go_id = |text: &str| {
        // Drop trailing `! comment` and `{modifiers}`: the id is the first word.
        let word = text.split_whitespace().next().unwrap_or("");
        GoId::parse(word).ok_or_else(|| {
            lines.malformed(
                format!("'{word}' in tag '{tag}' is not a GO id"),
                "this reader handles the Gene Ontology (ids GO:nnnnnnn) only",
            )
        })
    };
    match tag {
        "id" => term.id = go_id(value)?,
        "name" => term.name = value.to_string(),
        "namespace" => term.namespace = value.to_string(),
        "is_a" => {
            let parent = go_id(value)?;
            term.is_a.push(parent);
            return Ok(Some((parent, "is_a".to_string())));
        }
        "relationship" => {
            let mut words = value.split_whitespace();
            let relation = words.next().unwrap_or("");
            let target = go_id(words.next().unwrap_or(""))?;
            term.relationships.push(Relationship {
                relation: RelationType::from_obo(relation),
                target,
            });
            return Ok(Some((target, relation.to_string())));
        }
        "alt_id" => term.alt_ids.push(go_id(value)?),
        "is_obsolete" => term.is_obsolete = value == "true",
        "replaced_by" => term.replaced_by.push(go_id(value)?),
        "consider" => term
            .consider
            .extend(value.split_whitespace().next().map(str::to_string)),
        "subset" => term.subsets.push(value.to_string()),
        _ => {}
    }
    Ok(None)
}
