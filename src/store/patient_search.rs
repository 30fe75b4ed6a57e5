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
//!
//! Plans (`docs/STORAGE.md` shows them). A term whose index finds fewer than
//! [`SearchTuning::broad_matches`] patients is one statement: every match ranked and sorted, the page taken
//! (the *sorted* plan). A broader term is answered in result order without sorting its matches (the *broad*
//! plan): first the exact matches, merged from index ranges that each come in result order (first name,
//! last name, MRN, the whole-term splits); then the others, by walking the name-order index from the cursor
//! and stopping after a page of matches. A walk that reads [`SearchTuning::walk_window`] index entries
//! without filling the page falls back to sorting. Every plan returns the same pages (a test compares
//! them on both engines), so the choice is a matter of cost only. The broad plan tests long tokens with
//! LIKE, which on SQLite folds ASCII case only, where FTS5 folds all of Unicode: on SQLite a term with a
//! non-ASCII long token always takes the sorted plan, and the sorted plan rechecks ASCII long tokens with
//! the same LIKE.

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

/// Terms with more tokens take the sorted plan: the exact matches' whole-term splits grow with each token.
const MAX_BROAD_TOKENS: usize = 8;

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

/// When a search takes the broad plan (see the module documentation). The defaults suit a million
/// patients (`docs/STORAGE.md`); tests lower them to drive every plan on a few patients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchTuning {
    /// A term whose index finds at least this many patients takes the broad plan.
    pub broad_matches: u32,
    /// The most name-index entries one walk reads before it falls back to sorting.
    pub walk_window: u32,
}

impl Default for SearchTuning {
    fn default() -> Self {
        Self {
            broad_matches: 2_000,
            walk_window: 20_000,
        }
    }
}

/// A patient found and its exact-match rank (0 or 1).
type Ranked = (Patient, i64);

impl Store {
    /// Searches patients by name, MRN or date of birth (see the module documentation for the rules).
    pub async fn search_patients(&self, search: &PatientSearch) -> Result<PatientPage, StoreError> {
        let plan = self.search_plan(search).await?;
        let limit = plan.limit as usize;
        let mut patients = match self.direct() {
            // A few statements that may read many rows: on a blocking thread (see `store::direct`), the
            // whole plan in one turn. The direct runner never waits, so its futures are ready when first
            // polled.
            Some(direct) => {
                direct
                    .run_blocking(move |connection| {
                        futures::executor::block_on(plan.run(&mut DirectRunner(connection)))
                    })
                    .await?
            }
            None => plan.run(&mut PooledRunner(self)).await?,
        };
        let next_cursor = if patients.len() > limit {
            patients.truncate(limit);
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

    /// The engine's query plan of each statement this search runs (`EXPLAIN QUERY PLAN` / `EXPLAIN`),
    /// one line per row, each statement headed by `-- statement N`. Diagnostics and documentation only:
    /// it shows which indexes serve the search.
    pub async fn explain_patient_search(
        &self,
        search: &PatientSearch,
    ) -> Result<Vec<String>, StoreError> {
        let plan = self.search_plan(search).await?;
        let mut runner = ExplainRunner {
            store: self,
            lines: Vec::new(),
            statements: 0,
        };
        plan.run(&mut runner).await?;
        Ok(runner.lines)
    }

    async fn search_plan(&self, search: &PatientSearch) -> Result<Plan, StoreError> {
        let tuning = self.search_tuning();
        let mut plan = Plan::new(self.engine(), tuning, search)?;
        plan.small_table = self.patients_bound().await? < i64::from(tuning.broad_matches);
        Ok(plan)
    }

    /// At least the number of patients (the largest patient id), read at most once a second: a table
    /// with fewer patients than [`SearchTuning::broad_matches`] cannot need the broad plan, so searches of
    /// a small database skip the probe (a statement of its own, a fifth of a search's cost on the seed
    /// data).
    async fn patients_bound(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(id), 0) AS n FROM patients";
        let bound = self.patients_bound_cache();
        if let Some(value) = bound.fresh() {
            return Ok(value);
        }
        let value = match self.direct() {
            // The last entry of the primary key: microseconds, in place (see `store::direct`).
            Some(direct) => direct.run(|connection| {
                connection
                    .query_row(SQL, [], |row| row.get::<_, i64>(0))
                    .map_err(from_sqlite)
            })?,
            None => sqlx::query(SQL)
                .fetch_one(self.pool())
                .await?
                .integer("n")?,
        };
        bound.keep(value);
        Ok(value)
    }
}

/// The cached [`Store::patients_bound`]: the value and when it was read (milliseconds after `since`,
/// 0 for never).
#[derive(Debug)]
pub(crate) struct PatientsBound {
    since: std::time::Instant,
    value: std::sync::atomic::AtomicI64,
    read_at: std::sync::atomic::AtomicU64,
}

impl PatientsBound {
    const FRESH_FOR_MILLIS: u64 = 1_000;

    pub(crate) fn new() -> Self {
        Self {
            since: std::time::Instant::now(),
            value: std::sync::atomic::AtomicI64::new(0),
            read_at: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    fn fresh(&self) -> Option<i64> {
        use std::sync::atomic::Ordering::Relaxed;
        let read_at = self.read_at.load(Relaxed);
        (read_at != 0 && self.now().saturating_sub(read_at) < Self::FRESH_FOR_MILLIS)
            .then(|| self.value.load(Relaxed))
    }

    fn keep(&self, value: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.value.store(value, Relaxed);
        self.read_at.store(self.now(), Relaxed);
    }
}

/// Where a plan's statements run.
trait Runner {
    /// How many patients a probe ([`Plan::probe`]) finds: SQLite counts them (the `n` column of its one
    /// row), PostgreSQL's planner estimates them (`rows=` of its plan's top line).
    async fn matches(&mut self, probe: SearchQuery) -> Result<i64, StoreError>;
    /// Patients with their `search_rank`.
    async fn rows(&mut self, query: SearchQuery) -> Result<Vec<Ranked>, StoreError>;
}

/// A direct SQLite connection: the same SQL, each `$N` bound by name.
struct DirectRunner<'c>(&'c mut rusqlite::Connection);

impl DirectRunner<'_> {
    fn prepare(&self, query: &SearchQuery) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
        let mut statement = self.0.prepare_cached(&query.sql).map_err(from_sqlite)?;
        for (number, value) in query.values.iter().enumerate() {
            let name = format!("${}", number + 1);
            // Every value is used; a value a statement did not use would simply not be bound.
            if let Some(index) = statement.parameter_index(&name).map_err(from_sqlite)? {
                match value {
                    Value::Text(text) => statement.raw_bind_parameter(index, text),
                    Value::Integer(integer) => statement.raw_bind_parameter(index, integer),
                }
                .map_err(from_sqlite)?;
            }
        }
        Ok(statement)
    }
}

impl Runner for DirectRunner<'_> {
    async fn matches(&mut self, probe: SearchQuery) -> Result<i64, StoreError> {
        let mut statement = self.prepare(&probe)?;
        let mut rows = statement.raw_query();
        match rows.next().map_err(from_sqlite)? {
            Some(row) => row.integer("n"),
            None => Ok(0),
        }
    }

    async fn rows(&mut self, query: SearchQuery) -> Result<Vec<Ranked>, StoreError> {
        let mut statement = self.prepare(&query)?;
        let mut rows = statement.raw_query();
        let mut patients = Vec::new();
        while let Some(row) = rows.next().map_err(from_sqlite)? {
            patients.push((patient_from_row(row)?, row.integer("search_rank")?));
        }
        Ok(patients)
    }
}

/// The pool (PostgreSQL, or SQLite without a file): each statement on a leased connection.
struct PooledRunner<'s>(&'s Store);

impl Runner for PooledRunner<'_> {
    async fn matches(&mut self, probe: SearchQuery) -> Result<i64, StoreError> {
        let mut lease = self.0.lease().await?;
        match self.0.engine() {
            Engine::Sqlite => {
                let row = probe
                    .statement(Engine::Sqlite, "")
                    .fetch_one(&mut *lease)
                    .await;
                lease.settle(row.map_err(StoreError::from))?.integer("n")
            }
            Engine::Postgres => {
                let row = probe
                    .statement(Engine::Postgres, "EXPLAIN ")
                    .fetch_one(&mut *lease)
                    .await;
                let line: String = lease
                    .settle(row.map_err(StoreError::from))?
                    .try_get("QUERY PLAN")?;
                Ok(planned_rows(&line))
            }
        }
    }

    async fn rows(&mut self, query: SearchQuery) -> Result<Vec<Ranked>, StoreError> {
        let mut lease = self.0.lease().await?;
        let rows = query
            .statement(self.0.engine(), "")
            .fetch_all(&mut *lease)
            .await;
        let rows = lease.settle(rows.map_err(StoreError::from))?;
        rows.iter()
            .map(|row| Ok((patient_from_row(row)?, row.integer("search_rank")?)))
            .collect()
    }
}

/// Keeps the engine's plan of each statement, then runs it through the pool (its answer decides the next).
struct ExplainRunner<'s> {
    store: &'s Store,
    lines: Vec<String>,
    statements: usize,
}

impl ExplainRunner<'_> {
    async fn explain(&mut self, query: &SearchQuery) -> Result<(), StoreError> {
        let (prefix, column) = match self.store.engine() {
            Engine::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
            Engine::Postgres => ("EXPLAIN ", "QUERY PLAN"),
        };
        let rows = query
            .statement(self.store.engine(), prefix)
            .fetch_all(self.store.pool())
            .await?;
        self.statements += 1;
        self.lines.push(format!("-- statement {}", self.statements));
        for row in &rows {
            self.lines.push(row.try_get::<String, _>(column)?);
        }
        Ok(())
    }
}

impl Runner for ExplainRunner<'_> {
    async fn matches(&mut self, probe: SearchQuery) -> Result<i64, StoreError> {
        self.explain(&probe).await?;
        PooledRunner(self.store).matches(probe).await
    }

    async fn rows(&mut self, query: SearchQuery) -> Result<Vec<Ranked>, StoreError> {
        self.explain(&query).await?;
        PooledRunner(self.store).rows(query).await
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

/// A value bound to a statement.
#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Integer(i64),
}

/// SQL text with `$N` placeholders and the values to bind in order.
#[derive(Debug, Clone, Default)]
struct SearchQuery {
    sql: String,
    values: Vec<Value>,
}

impl SearchQuery {
    /// The statement `{prefix}{sql}` with its values bound. On PostgreSQL it is not kept prepared: an
    /// unnamed statement is planned for its values every time, where a kept one would after a few runs
    /// get a generic plan whose estimates ignore the term.
    fn statement(&self, engine: Engine, prefix: &str) -> AnyQuery<'static> {
        let mut statement = sqlx::query(sqlx::AssertSqlSafe(format!("{prefix}{}", self.sql)))
            .persistent(engine == Engine::Sqlite);
        for value in &self.values {
            statement = match value {
                Value::Text(text) => statement.bind(text.clone()),
                Value::Integer(integer) => statement.bind(*integer),
            };
        }
        statement
    }

    /// Adds a text value and returns its placeholder.
    fn value(&mut self, value: String) -> String {
        self.values.push(Value::Text(value));
        format!("${}", self.values.len())
    }

    /// Adds an integer value and returns its placeholder.
    fn integer(&mut self, value: i64) -> String {
        self.values.push(Value::Integer(value));
        format!("${}", self.values.len())
    }
}

/// A parsed search and the statements that answer it.
struct Plan {
    engine: Engine,
    tuning: SearchTuning,
    limit: u32,
    criteria: Criteria,
    /// Every token in the order written; empty for Everyone and a date of birth (which have no rank).
    tokens: Vec<String>,
    cursor: Option<Cursor>,
    /// The table holds fewer patients than [`SearchTuning::broad_matches`]: no probe, the sorted plan.
    small_table: bool,
}

impl Plan {
    fn new(
        engine: Engine,
        tuning: SearchTuning,
        search: &PatientSearch,
    ) -> Result<Self, StoreError> {
        let limit = checked_limit(search.limit)?;
        let cursor = search.cursor.as_deref().map(decode_cursor).transpose()?;
        let criteria = criteria_of(&search.term);
        let tokens = match criteria {
            Criteria::Tokens { .. } => Criteria::tokens(&search.term),
            Criteria::Everyone | Criteria::DateOfBirth(_) => Vec::new(),
        };
        Ok(Self {
            engine,
            tuning,
            limit,
            criteria,
            tokens,
            cursor,
            small_table: false,
        })
    }

    /// The page's rows, one more than the page when another page follows.
    async fn run(self, runner: &mut impl Runner) -> Result<Vec<Ranked>, StoreError> {
        let need = i64::from(self.limit) + 1;
        let broad = match self.probe().filter(|_| !self.small_table) {
            Some(probe) => runner.matches(probe).await? >= i64::from(self.tuning.broad_matches),
            None => false,
        };
        if !broad {
            return runner.rows(self.sorted(need)).await;
        }
        // Exact matches first (rank 0), unless the cursor is past them; then the others (rank 1).
        let (mut rows, after) = match &self.cursor {
            Some(cursor) if cursor.rank == 1 => (Vec::new(), Some(cursor)),
            cursor => (runner.rows(self.exact(cursor.as_ref(), need)).await?, None),
        };
        let want = need - rows.len() as i64;
        if want > 0 {
            let mut others = runner.rows(self.walk(after, want)).await?;
            if (others.len() as i64) < want {
                others = runner.rows(self.sorted_others(after, want)).await?;
            }
            rows.extend(others);
        }
        Ok(rows)
    }

    /// The statement that tells how many patients the term's index finds: on SQLite it counts them, up
    /// to [`SearchTuning::broad_matches`] (the FTS5 index alone for long tokens: the LIKE rechecks would
    /// read every row it found); on PostgreSQL the planner estimates them from its statistics, as the
    /// count would itself cost a scan. `None` when the term always takes the sorted plan (everyone, a date
    /// of birth, many tokens, a non-ASCII long token on SQLite).
    fn probe(&self) -> Option<SearchQuery> {
        let Criteria::Tokens { long, .. } = &self.criteria else {
            return None;
        };
        let sqlite = self.engine == Engine::Sqlite;
        if self.tokens.len() > MAX_BROAD_TOKENS || (sqlite && long.iter().any(|t| !t.is_ascii())) {
            return None;
        }
        let mut query = SearchQuery::default();
        let cap = self.tuning.broad_matches;
        query.sql = if sqlite && !long.is_empty() {
            let phrases = query.value(fts_phrases(long));
            format!(
                "SELECT count(*) AS n FROM (SELECT rowid FROM patients_search \
                 WHERE patients_search MATCH {phrases} LIMIT {cap}) m"
            )
        } else {
            let conditions = self.match_conditions(&mut query, true);
            let matches = format!("SELECT 1 FROM patients p{}", where_clause(&conditions));
            match self.engine {
                Engine::Sqlite => format!("SELECT count(*) AS n FROM ({matches} LIMIT {cap}) m"),
                Engine::Postgres => matches,
            }
        };
        Some(query)
    }

    /// The sorted plan: every match found through the term's index, ranked and sorted, the first `need`
    /// taken.
    fn sorted(&self, need: i64) -> SearchQuery {
        let mut query = SearchQuery::default();
        let rank =
            (!self.tokens.is_empty()).then(|| exact_rank(self.engine, &mut query, &self.tokens));
        let mut conditions = self.match_conditions(&mut query, true);
        if let Some(cursor) = &self.cursor {
            conditions.push(key_after(self.engine, &mut query, cursor, rank.as_deref()));
        }
        let (rank_column, rank_order) = match &rank {
            Some(rank) => (rank.as_str(), "search_rank, "),
            None => ("CAST(0 AS BIGINT)", ""),
        };
        let limit = query.integer(need);
        query.sql = format!(
            "SELECT {PATIENT_COLUMNS}, {rank_column} AS search_rank FROM patients p{} \
             ORDER BY {rank_order}{} LIMIT {limit}",
            where_clause(&conditions),
            order_key(self.engine)
        );
        query
    }

    /// The broad plan's fallback when a walk's window ran out: the other matches (rank 1) after `cursor`,
    /// every one found through the term's index and sorted, the first `need` taken. The matches are
    /// materialised first, so that PostgreSQL's planner, whose estimate for these conditions is far too
    /// low, does not walk the name index instead (the walk just failed: the matches are sparse there).
    fn sorted_others(&self, cursor: Option<&Cursor>, need: i64) -> SearchQuery {
        let engine = self.engine;
        let mut query = SearchQuery::default();
        let conditions = self.rank_conditions(&mut query, true, 1, cursor);
        let (key_columns, key_order) = key_columns(engine);
        let limit = query.integer(need);
        query.sql = format!(
            "SELECT {PATIENT_COLUMNS}, CAST(1 AS BIGINT) AS search_rank FROM patients p WHERE p.id IN (\
             WITH m AS MATERIALIZED (SELECT p.id, {key_columns} FROM patients p{}) \
             SELECT id FROM m ORDER BY {key_order} LIMIT {limit}) ORDER BY {} LIMIT {limit}",
            where_clause(&conditions),
            order_key(engine)
        );
        query
    }

    /// The broad plan's exact matches (rank 0) after `cursor`: one index range per way a patient can
    /// match exactly, each read in result order, merged (`UNION ALL` of disjoint ranges under one
    /// `ORDER BY`), the first `need` taken.
    fn exact(&self, cursor: Option<&Cursor>, need: i64) -> SearchQuery {
        let engine = self.engine;
        let mut query = SearchQuery::default();
        let common = self
            .rank_conditions(&mut query, false, 0, cursor)
            .join(" AND ");
        let ranges = self.exact_ranges(&mut query);
        let (key_columns, key_order) = key_columns(engine);
        let arms = ranges
            .iter()
            .enumerate()
            .map(|(index, range)| {
                let earlier: String = ranges[..index]
                    .iter()
                    .map(|earlier| format!(" AND NOT ({earlier})"))
                    .collect();
                format!(
                    "SELECT p.id, {key_columns} FROM patients p WHERE {range}{earlier} AND {common}"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let limit = query.integer(need);
        query.sql = format!(
            "SELECT {PATIENT_COLUMNS}, CAST(0 AS BIGINT) AS search_rank FROM patients p \
             WHERE p.id IN (SELECT id FROM ({arms} ORDER BY {key_order} LIMIT {limit}) e) \
             ORDER BY {} LIMIT {limit}",
            order_key(engine)
        );
        query
    }

    /// Conditions that hold for every exact match, each an equality an index serves in result order:
    /// the first token equals the first name, the last name or the MRN (MRNs are stored in upper case),
    /// or the whole term is "first last" or "last first" split between two tokens.
    fn exact_ranges(&self, query: &mut SearchQuery) -> Vec<String> {
        let engine = self.engine;
        let Some(first_token) = self.tokens.first() else {
            return Vec::new();
        };
        let token = query.value(first_token.clone());
        let upper = query.value(first_token.to_ascii_uppercase());
        let mut ranges = vec![
            equals(engine, "p.first_name", &token),
            equals(engine, "p.last_name", &token),
            format!("p.mrn = {upper}"),
        ];
        for split in 1..self.tokens.len() {
            let head = query.value(self.tokens[..split].join(" "));
            let tail = query.value(self.tokens[split..].join(" "));
            for (first, last) in [(&head, &tail), (&tail, &head)] {
                ranges.push(format!(
                    "{} AND {}",
                    equals(engine, "p.first_name", first),
                    equals(engine, "p.last_name", last)
                ));
            }
        }
        ranges
    }

    /// The broad plan's other matches (rank 1) after `cursor`: the name-order index read in result order
    /// from the cursor, at most [`SearchTuning::walk_window`] entries, each tested on its own columns, the
    /// first `need` matches taken. The window is read lazily (a co-routine on SQLite, a subquery scan on
    /// PostgreSQL), so the walk stops as soon as `need` rows matched.
    fn walk(&self, cursor: Option<&Cursor>, need: i64) -> SearchQuery {
        let engine = self.engine;
        let mut query = SearchQuery::default();
        let window: Vec<String> = cursor
            .map(|cursor| key_after(engine, &mut query, cursor, None))
            .into_iter()
            .collect();
        let conditions = self.rank_conditions(&mut query, false, 1, None);
        let limit = query.integer(need);
        let indexed = match engine {
            Engine::Sqlite => " INDEXED BY patients_name_order",
            Engine::Postgres => "",
        };
        let order = order_key(engine);
        query.sql = format!(
            "SELECT {PATIENT_COLUMNS}, CAST(1 AS BIGINT) AS search_rank FROM patients p WHERE p.id IN (\
             SELECT p.id FROM (SELECT p.id, p.first_name, p.last_name, p.mrn FROM patients p{indexed}{} \
             ORDER BY {order} LIMIT {}) p{} LIMIT {limit}) ORDER BY {order} LIMIT {limit}",
            where_clause(&window),
            self.tuning.walk_window,
            where_clause(&conditions)
        );
        query
    }

    /// The broad plan's conditions for one exact-match rank: the term's (see [`Plan::match_conditions`]),
    /// the rank, and rows after `cursor` when given.
    fn rank_conditions(
        &self,
        query: &mut SearchQuery,
        through_index: bool,
        rank: i64,
        cursor: Option<&Cursor>,
    ) -> Vec<String> {
        let mut conditions = self.match_conditions(query, through_index);
        let rank_sql = exact_rank(self.engine, query, &self.tokens);
        conditions.push(format!("{rank_sql} = {rank}"));
        if let Some(cursor) = cursor {
            conditions.push(key_after(self.engine, query, cursor, None));
        }
        conditions
    }

    /// Every condition of the term. `through_index`: long tokens as the trigram index can serve them
    /// (SQLite: the FTS5 table, rechecked with LIKE; PostgreSQL: the GIN index's expression). Without it,
    /// no condition is one a trigram index serves, so the plan's own index drives: each reads only the
    /// row's first name, last name and MRN, and a non-ASCII long token on SQLite, which only FTS5 can
    /// test, is left out ([`Plan::probe`] keeps such terms on the sorted plan).
    fn match_conditions(&self, query: &mut SearchQuery, through_index: bool) -> Vec<String> {
        let engine = self.engine;
        let mut conditions = Vec::new();
        match &self.criteria {
            Criteria::Everyone => {}
            Criteria::DateOfBirth(dob) => {
                conditions.push(format!("p.dob = {}", query.value(dob.clone())));
            }
            Criteria::Tokens { long, short } => {
                if engine == Engine::Sqlite && through_index && !long.is_empty() {
                    let phrases = query.value(fts_phrases(long));
                    conditions.push(format!(
                        "p.id IN (SELECT rowid FROM patients_search WHERE patients_search MATCH {phrases})"
                    ));
                }
                for token in long {
                    let indexed = indexed_part(token);
                    let gin = engine == Engine::Postgres && through_index;
                    if gin {
                        // The GIN index's own expression, which the planner can serve from it.
                        let pattern = query.value(format!("%{}%", escape_like(indexed)));
                        conditions.push(format!(
                            "lower(p.first_name || ' ' || p.last_name || ' ' || p.mrn) LIKE {pattern}"
                        ));
                    }
                    // The whole token on the row's fields: the recheck of an index condition, or the
                    // only condition (not for a non-ASCII token on SQLite: see above).
                    let like = match engine {
                        Engine::Sqlite => token.is_ascii(),
                        Engine::Postgres => !gin || indexed != token,
                    };
                    if like {
                        let pattern = query.value(format!("%{}%", escape_like(token)));
                        conditions.push(like_any_field(engine, &pattern));
                    }
                }
                if !long.is_empty() {
                    for token in short {
                        let pattern = query.value(format!("%{}%", escape_like(token)));
                        conditions.push(like_any_field(engine, &pattern));
                    }
                } else if let Some((first, rest)) = short.split_first() {
                    conditions.push(prefix_range_condition(engine, query, first));
                    for token in rest {
                        let pattern = query.value(format!("{}%", escape_like(token)));
                        conditions.push(like_any_field(engine, &pattern));
                    }
                }
            }
        }
        conditions
    }
}

/// The planner's row estimate in the top line of a PostgreSQL plan (`… rows=123 width=4)`); 0 if absent.
fn planned_rows(line: &str) -> i64 {
    line.split_once(" rows=")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

/// ` WHERE a AND b`, or nothing.
fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// The result order: last name, first name (case-insensitive), MRN — the `patients_name_order` index.
fn order_key(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "p.last_name COLLATE NOCASE, p.first_name COLLATE NOCASE, p.mrn",
        Engine::Postgres => "lower(p.last_name), lower(p.first_name), p.mrn",
    }
}

/// The sort key as output columns `k1, k2, k3` of a subquery, and the order on them.
fn key_columns(engine: Engine) -> (&'static str, &'static str) {
    match engine {
        Engine::Sqlite => (
            "p.last_name AS k1, p.first_name AS k2, p.mrn AS k3",
            "k1 COLLATE NOCASE, k2 COLLATE NOCASE, k3",
        ),
        Engine::Postgres => (
            "lower(p.last_name) AS k1, lower(p.first_name) AS k2, p.mrn AS k3",
            "k1, k2, k3",
        ),
    }
}

/// Rows after the cursor in the result order. `rank`: the exact-match rank expression when it leads the
/// order (the sorted plan); without it the condition also bounds the last name from below, which lets a
/// walk start at the cursor.
fn key_after(
    engine: Engine,
    query: &mut SearchQuery,
    cursor: &Cursor,
    rank: Option<&str>,
) -> String {
    let last = query.value(cursor.last_name.clone());
    let first = query.value(cursor.first_name.clone());
    let mrn = query.value(cursor.mrn.clone());
    let (rank_key, rank_value, seek) = match rank {
        Some(rank) => (
            format!("{rank}, "),
            format!("{}, ", cursor.rank),
            String::new(),
        ),
        None => (
            String::new(),
            String::new(),
            match engine {
                Engine::Sqlite => format!("p.last_name COLLATE NOCASE >= {last} AND "),
                Engine::Postgres => format!("lower(p.last_name) >= lower({last}) AND "),
            },
        ),
    };
    match engine {
        Engine::Sqlite => format!(
            "{seek}({rank_key}p.last_name COLLATE NOCASE, p.first_name COLLATE NOCASE, p.mrn) \
             > ({rank_value}{last}, {first}, {mrn})"
        ),
        Engine::Postgres => format!(
            "{seek}({rank_key}lower(p.last_name), lower(p.first_name), p.mrn) \
             > ({rank_value}lower({last}), lower({first}), {mrn})"
        ),
    }
}

/// `column` equals a lower-cased token, case-insensitively, as the name indexes compare.
fn equals(engine: Engine, column: &str, value: &str) -> String {
    match engine {
        Engine::Sqlite => format!("{column} = {value} COLLATE NOCASE"),
        Engine::Postgres => format!("lower({column}) = {value}"),
    }
}

/// The exact-match rank of a row as SQL: 0 when every token equals the first name, the last name or the
/// MRN, or the whole term equals "first last" or "last first" (case-insensitive); else 1.
fn exact_rank(engine: Engine, query: &mut SearchQuery, tokens: &[String]) -> String {
    let equals = |column: &str, value: &str| equals(engine, column, value);
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

/// The long tokens as one FTS5 query: quoted phrases of their [`indexed_part`]s joined by AND (SQLite's
/// trigram index).
fn fts_phrases(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|token| format!("\"{}\"", indexed_part(token).replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The part of a long token looked up in the trigram index: an ASCII token with a digit from its first
/// digit on (keeping three characters), the token itself otherwise. MRNs share their leading letters,
/// whose trigrams are in every patient's entry and cost a pass over the whole index (`SYN00777777`: 10 ms
/// on 1,000,000 patients, against 1 ms for `00777777`); a LIKE recheck of the whole token beside the
/// index condition keeps the match exact.
fn indexed_part(token: &str) -> &str {
    let from = match token.find(|c: char| c.is_ascii_digit()) {
        Some(digit) if token.is_ascii() => digit.min(token.len().saturating_sub(3)),
        _ => 0,
    };
    &token[from..]
}

/// A LIKE filter on each searchable field (not index-backed: it narrows rows another condition found, or
/// tests the entries a walk reads).
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
    fn planner_estimates_are_read_from_the_plan() {
        let line = "Seq Scan on patients p  (cost=0.00..70593.10 rows=49662 width=4)";
        assert_eq!(planned_rows(line), 49662);
        assert_eq!(planned_rows("Result  (cost=0.00..0.01 rows=1 width=4)"), 1);
        assert_eq!(planned_rows("no estimate"), 0);
    }

    #[test]
    fn mrn_tokens_are_looked_up_from_their_first_digit() {
        assert_eq!(indexed_part("mrn001"), "001");
        let tokens = ["syn00777777", "mrn01", "ward", "a\"b", "jür9en"].map(str::to_owned);
        assert_eq!(
            fts_phrases(&tokens),
            r#""00777777" AND "n01" AND "ward" AND "a""b" AND "jür9en""#
        );
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
