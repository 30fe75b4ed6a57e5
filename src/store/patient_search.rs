//! Patient search: tokens of a free-text term matched against names and MRN through an index
//! (FTS5 trigram on SQLite, pg_trgm GIN on PostgreSQL), a date of birth, keyset pages in a stable order.
//!
//! Rules: the term is split on whitespace and commas; every token must be a case-insensitive substring
//! of the first name, the last name or the MRN. Tokens shorter than three characters cannot use a trigram
//! index: next to a longer token they only filter its matches; when every token is short, each must be a
//! *prefix* of a name or the MRN, served by the name and MRN b-tree indexes. A term that is an ISO date
//! matches the date of birth exactly.
//!
//! Order: exact matches first, then last name, first name (case-insensitive), MRN. A patient matches a name
//! term *exactly* when every token equals (case-insensitively) their first name, last name or MRN, or the
//! whole term equals "first last" or "last first" — so `Olivia Ward` lists Olivia Ward before Olivia
//! Edwards. The rank is computed on the rows the index found (it filters nothing), and it is the first
//! key of the keyset cursor, so pages stay complete and stable. Everyone and date-of-birth searches have
//! no rank: their order is the name index's own.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::Row as _;

use super::bulk::AnyQuery;
use super::direct::from_sqlite;
use super::patients::{PATIENT_COLUMNS, patient_from_row};
use super::rows::Columns;
use super::{Engine, Store, StoreError};
use crate::domain::clinical::Patient;
use crate::domain::time::Date;

/// Largest page a search returns.
pub const MAX_SEARCH_LIMIT: u32 = 100;

/// A patient search: the free-text `term`, a page size (1..=100) and the cursor of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSearch {
    pub term: String,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// One page of results; `next_cursor` is set when more results follow.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientPage {
    pub patients: Vec<Patient>,
    pub next_cursor: Option<String>,
}

impl Store {
    /// Searches patients by name, MRN or date of birth (see the module documentation for the rules).
    pub async fn search_patients(&self, search: &PatientSearch) -> Result<PatientPage, StoreError> {
        let limit = checked_limit(search.limit)?;
        let query = build_search(self.engine(), search)?;
        let mut patients = match self.direct() {
            // One statement that may read many rows: on a blocking thread (see `store::direct`).
            Some(direct) => {
                direct
                    .run_blocking(move |connection| query.run_direct(connection, limit))
                    .await?
            }
            None => {
                let mut lease = self.lease().await?;
                let rows = query.statement("", limit).fetch_all(&mut *lease).await;
                let rows = lease.settle(rows.map_err(StoreError::from))?;
                rows.iter()
                    .map(|row| Ok((patient_from_row(row)?, row.integer("search_rank")?)))
                    .collect::<Result<Vec<_>, StoreError>>()?
            }
        };
        let next_cursor = if patients.len() > limit as usize {
            patients.truncate(limit as usize);
            patients
                .last()
                .map(|(patient, rank)| encode_cursor(*rank, patient))
        } else {
            None
        };
        let patients = patients.into_iter().map(|(patient, _)| patient).collect();
        Ok(PatientPage {
            patients,
            next_cursor,
        })
    }

    /// The engine's query plan for this search (`EXPLAIN QUERY PLAN` / `EXPLAIN`), one line per row.
    /// Diagnostics and documentation only: it shows which indexes serve the search.
    pub async fn explain_patient_search(
        &self,
        search: &PatientSearch,
    ) -> Result<Vec<String>, StoreError> {
        let limit = checked_limit(search.limit)?;
        let query = build_search(self.engine(), search)?;
        let (prefix, column) = match self.engine() {
            Engine::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
            Engine::Postgres => ("EXPLAIN ", "QUERY PLAN"),
        };
        let rows = query
            .statement(prefix, limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>(column).map_err(StoreError::from))
            .collect()
    }
}

fn checked_limit(limit: u32) -> Result<u32, StoreError> {
    if (1..=MAX_SEARCH_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(StoreError::Invalid {
            field: "limit",
            rule: format!("expected 1 to {MAX_SEARCH_LIMIT}"),
        })
    }
}

/// What a term asks for.
#[derive(Debug, PartialEq, Eq)]
enum Criteria {
    Everyone,
    DateOfBirth(String),
    /// Lower-cased tokens of three characters or more, and shorter ones.
    Tokens {
        long: Vec<String>,
        short: Vec<String>,
    },
}

impl Criteria {
    /// Every token in the order written (long and short), for the exact-match rank.
    fn tokens(term: &str) -> Vec<String> {
        term.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|token| !token.is_empty())
            .map(str::to_lowercase)
            .collect()
    }
}

fn criteria_of(term: &str) -> Criteria {
    let term = term.trim();
    if let Ok(date) = Date::parse("dob", term) {
        return Criteria::DateOfBirth(date.to_string());
    }
    let (long, short): (Vec<String>, Vec<String>) = Criteria::tokens(term)
        .into_iter()
        .partition(|token| token.chars().count() >= 3);
    if long.is_empty() && short.is_empty() {
        Criteria::Everyone
    } else {
        Criteria::Tokens { long, short }
    }
}

/// SQL text with `$N` placeholders and the text values to bind in order (the limit is bound last).
struct SearchQuery {
    sql: String,
    values: Vec<String>,
}

impl SearchQuery {
    /// The statement `{prefix}{sql}` with the search's values bound, then the page size (`limit + 1`:
    /// one more row says whether there is a next page).
    fn statement(self, prefix: &str, limit: u32) -> AnyQuery<'static> {
        let mut statement = sqlx::query(sqlx::AssertSqlSafe(format!("{prefix}{}", self.sql)));
        for value in self.values {
            statement = statement.bind(value);
        }
        statement.bind(i64::from(limit) + 1)
    }

    /// Runs the search on a direct SQLite connection: the same SQL, each `$N` bound by name, the page
    /// size (`limit + 1`) last. Patients with their exact-match rank.
    fn run_direct(
        self,
        connection: &mut rusqlite::Connection,
        limit: u32,
    ) -> Result<Vec<(Patient, i64)>, StoreError> {
        let mut statement = connection.prepare_cached(&self.sql).map_err(from_sqlite)?;
        let values = self
            .values
            .iter()
            .map(|value| value as &dyn rusqlite::ToSql);
        let page_size = i64::from(limit) + 1;
        for (number, value) in values
            .chain([&page_size as &dyn rusqlite::ToSql])
            .enumerate()
        {
            let name = format!("${}", number + 1);
            // A value the SQL does not use (none today) is simply not bound.
            if let Some(index) = statement.parameter_index(&name).map_err(from_sqlite)? {
                statement
                    .raw_bind_parameter(index, value)
                    .map_err(from_sqlite)?;
            }
        }
        let mut rows = statement.raw_query();
        let mut patients = Vec::new();
        while let Some(row) = rows.next().map_err(from_sqlite)? {
            patients.push((patient_from_row(row)?, row.integer("search_rank")?));
        }
        Ok(patients)
    }

    /// Adds a value and returns its placeholder.
    fn value(&mut self, value: String) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }
}

fn build_search(engine: Engine, search: &PatientSearch) -> Result<SearchQuery, StoreError> {
    let cursor = search.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut query = SearchQuery {
        sql: String::new(),
        values: Vec::new(),
    };
    let criteria = criteria_of(&search.term);
    let rank = match criteria {
        Criteria::Tokens { .. } => Some(exact_rank(
            engine,
            &mut query,
            &Criteria::tokens(&search.term),
        )),
        Criteria::Everyone | Criteria::DateOfBirth(_) => None,
    };
    query.sql = format!(
        "SELECT {PATIENT_COLUMNS}, {} AS search_rank FROM patients p WHERE 1 = 1",
        rank.as_deref().unwrap_or("CAST(0 AS BIGINT)")
    );
    let mut conditions = Vec::new();
    match criteria {
        Criteria::Everyone => {}
        Criteria::DateOfBirth(dob) => conditions.push(format!("p.dob = {}", query.value(dob))),
        Criteria::Tokens { long, short } => {
            if !long.is_empty() {
                conditions.push(trigram_condition(engine, &mut query, &long));
                for token in &short {
                    let pattern = query.value(format!("%{}%", escape_like(token)));
                    conditions.push(like_any_field(engine, &pattern));
                }
            } else if let Some((first, rest)) = short.split_first() {
                conditions.push(prefix_range_condition(engine, &mut query, first));
                for token in rest {
                    let pattern = query.value(format!("{}%", escape_like(token)));
                    conditions.push(like_any_field(engine, &pattern));
                }
            }
        }
    }
    if let Some(cursor) = cursor {
        let last = query.value(cursor.last_name);
        let first = query.value(cursor.first_name);
        let mrn = query.value(cursor.mrn);
        let (rank_key, rank_value) = match &rank {
            Some(rank) => (format!("{rank}, "), format!("{}, ", cursor.rank)),
            None => (String::new(), String::new()),
        };
        conditions.push(match engine {
            Engine::Sqlite => format!(
                "({rank_key}p.last_name COLLATE NOCASE, p.first_name COLLATE NOCASE, p.mrn) \
                 > ({rank_value}{last}, {first}, {mrn})"
            ),
            Engine::Postgres => format!(
                "({rank_key}lower(p.last_name), lower(p.first_name), p.mrn) \
                 > ({rank_value}lower({last}), lower({first}), {mrn})"
            ),
        });
    }
    for condition in conditions {
        query.sql.push_str(" AND ");
        query.sql.push_str(&condition);
    }
    let limit = format!("${}", query.values.len() + 1);
    let rank_key = if rank.is_some() { "search_rank, " } else { "" };
    query.sql.push_str(&match engine {
        Engine::Sqlite => format!(
            " ORDER BY {rank_key}p.last_name COLLATE NOCASE, p.first_name COLLATE NOCASE, p.mrn \
             LIMIT {limit}"
        ),
        Engine::Postgres => format!(
            " ORDER BY {rank_key}lower(p.last_name), lower(p.first_name), p.mrn LIMIT {limit}"
        ),
    });
    Ok(query)
}

/// The exact-match rank of a row as SQL: 0 when every token equals the first name, the last name or the
/// MRN, or the whole term equals "first last" or "last first" (case-insensitive); else 1.
fn exact_rank(engine: Engine, query: &mut SearchQuery, tokens: &[String]) -> String {
    let equals = |column: &str, value: &str| match engine {
        Engine::Sqlite => format!("{column} = {value} COLLATE NOCASE"),
        Engine::Postgres => format!("lower({column}) = {value}"),
    };
    let every_token = tokens
        .iter()
        .map(|token| {
            let token = query.value(token.clone());
            format!(
                "({} OR {} OR {})",
                equals("p.first_name", &token),
                equals("p.last_name", &token),
                equals("p.mrn", &token)
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    let whole = query.value(tokens.join(" "));
    format!(
        "CAST(CASE WHEN ({every_token}) OR {} OR {} THEN 0 ELSE 1 END AS BIGINT)",
        equals("(p.first_name || ' ' || p.last_name)", &whole),
        equals("(p.last_name || ' ' || p.first_name)", &whole)
    )
}

/// Every long token through the trigram index. PostgreSQL: the exact expression of the
/// `patients_search` GIN index. SQLite: one FTS5 query of quoted phrases joined by AND.
fn trigram_condition(engine: Engine, query: &mut SearchQuery, tokens: &[String]) -> String {
    match engine {
        Engine::Sqlite => {
            let phrases = tokens
                .iter()
                .map(|token| format!("\"{}\"", token.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(" AND ");
            let phrases = query.value(phrases);
            format!(
                "p.id IN (SELECT rowid FROM patients_search WHERE patients_search MATCH {phrases})"
            )
        }
        Engine::Postgres => tokens
            .iter()
            .map(|token| {
                let pattern = query.value(format!("%{}%", escape_like(token)));
                format!("lower(p.first_name || ' ' || p.last_name || ' ' || p.mrn) LIKE {pattern}")
            })
            .collect::<Vec<_>>()
            .join(" AND "),
    }
}

/// A LIKE filter on each searchable field (not index-backed: it narrows rows another condition found).
fn like_any_field(engine: Engine, pattern: &str) -> String {
    match engine {
        Engine::Sqlite => format!(
            "(p.first_name LIKE {pattern} ESCAPE '\\' OR p.last_name LIKE {pattern} ESCAPE '\\' \
             OR p.mrn LIKE {pattern} ESCAPE '\\')"
        ),
        Engine::Postgres => format!(
            "(lower(p.first_name) LIKE {pattern} OR lower(p.last_name) LIKE {pattern} \
             OR lower(p.mrn) LIKE {pattern})"
        ),
    }
}

/// `token` as a prefix of the first name, last name or MRN, as ranges the b-tree indexes serve.
fn prefix_range_condition(engine: Engine, query: &mut SearchQuery, token: &str) -> String {
    let upper_token = token.to_uppercase();
    let (Some(after), Some(upper_after)) = (successor(token), successor(&upper_token)) else {
        let pattern = query.value(format!("{}%", escape_like(token)));
        return like_any_field(engine, &pattern);
    };
    let low = query.value(token.to_owned());
    let high = query.value(after);
    let mrn_low = query.value(upper_token);
    let mrn_high = query.value(upper_after);
    match engine {
        Engine::Sqlite => format!(
            "((p.first_name COLLATE NOCASE >= {low} AND p.first_name COLLATE NOCASE < {high}) \
             OR (p.last_name COLLATE NOCASE >= {low} AND p.last_name COLLATE NOCASE < {high}) \
             OR (p.mrn >= {mrn_low} AND p.mrn < {mrn_high}))"
        ),
        Engine::Postgres => format!(
            "((lower(p.first_name) >= {low} AND lower(p.first_name) < {high}) \
             OR (lower(p.last_name) >= {low} AND lower(p.last_name) < {high}) \
             OR (p.mrn >= {mrn_low} AND p.mrn < {mrn_high}))"
        ),
    }
}

/// The smallest string greater than every string starting with `prefix` (last character + 1).
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let next = char::from_u32(u32::from(last) + 1)?;
    chars.push(next);
    Some(chars.into_iter().collect())
}

fn escape_like(token: &str) -> String {
    let mut escaped = String::with_capacity(token.len());
    for c in token.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The position after a patient in the search order: its exact-match rank (0 or 1; 0 when the search
/// has no rank), then its name and MRN.
#[derive(Debug, PartialEq, Eq)]
struct Cursor {
    rank: u8,
    last_name: String,
    first_name: String,
    mrn: String,
}

fn encode_cursor(rank: i64, patient: &Patient) -> String {
    let cursor = (
        rank,
        &patient.last_name,
        &patient.first_name,
        patient.mrn.as_str(),
    );
    let json = serde_json::to_vec(&cursor).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(raw: &str) -> Result<Cursor, StoreError> {
    let invalid = || StoreError::Invalid {
        field: "cursor",
        rule: "expected the next_cursor of a previous search".to_owned(),
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
    let (rank, last_name, first_name, mrn): (u8, String, String, String) =
        serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if rank > 1 {
        return Err(invalid());
    }
    Ok(Cursor {
        rank,
        last_name,
        first_name,
        mrn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_split_into_long_and_short_tokens() {
        assert_eq!(
            criteria_of("Doe, J"),
            Criteria::Tokens {
                long: vec!["doe".into()],
                short: vec!["j".into()]
            }
        );
        assert_eq!(
            criteria_of(" 1985-06-15 "),
            Criteria::DateOfBirth("1985-06-15".into())
        );
        assert_eq!(criteria_of(" , "), Criteria::Everyone);
    }

    #[test]
    fn like_wildcards_are_escaped_and_prefixes_have_successors() {
        assert_eq!(escape_like("a%b_c\\"), "a\\%b\\_c\\\\");
        assert_eq!(successor("jo").as_deref(), Some("jp"));
        assert_eq!(successor(""), None);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = URL_SAFE_NO_PAD.encode(br#"[1,"Doe","John","MRN001"]"#);
        assert_eq!(
            decode_cursor(&cursor).ok(),
            Some(Cursor {
                rank: 1,
                last_name: "Doe".into(),
                first_name: "John".into(),
                mrn: "MRN001".into()
            })
        );
        for garbage in [
            "not a cursor".to_owned(),
            URL_SAFE_NO_PAD.encode(br#"[7,"Doe","John","MRN001"]"#),
            URL_SAFE_NO_PAD.encode(br#"["Doe","John","MRN001"]"#),
        ] {
            assert!(matches!(
                decode_cursor(&garbage),
                Err(StoreError::Invalid {
                    field: "cursor",
                    ..
                })
            ));
        }
    }
}
