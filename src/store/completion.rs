//! Completion candidates (`completion/complete`): MRNs and NPIs by prefix, provider names by substring,
//! ordered, at most `limit` (the caller asks one more than it shows, to know whether more follow).
//! The prefix is kept to identifier characters, so it needs no escaping; MRNs are stored upper-case and
//! NPIs as digits, so a range on the unique key serves the prefix on both engines.

use sqlx::Row;

use super::providers::contains_pattern;
use super::{Store, StoreError};

/// The characters an MRN or NPI may hold, upper-cased; `None` when `prefix` holds any other.
fn identifier_prefix(prefix: &str) -> Option<String> {
    let prefix = prefix.trim().to_ascii_uppercase();
    prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        .then_some(prefix)
}

impl Store {
    /// MRNs starting with `prefix` (case-insensitive), in order.
    pub async fn complete_mrns(&self, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        self.complete_key("patients", "mrn", prefix, limit).await
    }

    /// NPIs starting with `prefix`, in order.
    pub async fn complete_npis(&self, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        self.complete_key("providers", "npi", prefix, limit).await
    }

    /// Provider names containing `text` (case-insensitive), by name.
    pub async fn complete_provider_names(
        &self,
        text: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT name FROM providers WHERE ($1 IS NULL OR lower(name) LIKE $1 ESCAPE '\\') \
             ORDER BY lower(name), npi LIMIT $2",
        )
        .bind(contains_pattern(Some(text)))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>("name").map_err(StoreError::from))
            .collect()
    }

    async fn complete_key(
        &self,
        table: &'static str,
        key: &'static str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let Some(prefix) = identifier_prefix(prefix) else {
            return Ok(Vec::new());
        };
        // `~` sorts after every identifier character, so [prefix, prefix~) holds exactly the matches.
        let sql = format!(
            "SELECT {key} FROM {table} WHERE {key} >= $1 AND {key} < $2 ORDER BY {key} LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(prefix.clone())
            .bind(format!("{prefix}~"))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>(key).map_err(StoreError::from))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::identifier_prefix;

    #[test]
    fn only_identifier_characters_make_a_prefix() {
        assert_eq!(identifier_prefix(" mrn0 ").as_deref(), Some("MRN0"));
        assert_eq!(identifier_prefix("").as_deref(), Some(""));
        assert_eq!(identifier_prefix("MRN%"), None);
        assert_eq!(identifier_prefix("a'b"), None);
    }
}
