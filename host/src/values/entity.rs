//! Legal entities: the companies the platform moves money under (mobile
//! money and wallets: Phoenix Hub Liberia, Inc.; cards and the USD float:
//! Cinrique Inc.). Every ledger account belongs to one, merchant-facing
//! objects name it, customer-facing words never do. The set is closed and
//! configured by the operator (`[entities]`): a rail that names any other
//! entity is refused when it loads, so a typo in a plugin cannot open a
//! parallel set of ledger accounts.

use std::sync::Arc;

/// One configured legal entity, by its registered name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entity(Arc<str>);

impl Entity {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An entity by name, unchecked: for tools that run a rail without a
    /// ledger. The gateway only makes entities through [`Entities`].
    pub fn unchecked(name: &str) -> Entity {
        Entity(Arc::from(name))
    }
}

impl std::fmt::Debug for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Entity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The entity's registered name, in the OpenAPI document (the set is the
/// operator's, so not an enum).
impl utoipa::PartialSchema for Entity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("The legal entity the money moved under, by its registered name."))
            .examples(["Phoenix Hub Liberia, Inc."])
            .into()
    }
}

impl utoipa::ToSchema for Entity {}

impl rusqlite::types::ToSql for Entity {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(self.0.as_bytes())))
    }
}

/// Stored entities were checked against the configured set when written.
impl rusqlite::types::FromSql for Entity {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Entity> {
        Ok(Entity(Arc::from(value.as_str()?)))
    }
}

/// The entities the operator configured, and the one that holds customer
/// wallets (and so transfers and claim escrow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entities {
    known: Vec<Entity>,
    wallets: Entity,
}

impl Entities {
    /// The set `names`, with `wallets` (one of them) holding wallets.
    pub fn new(names: &[String], wallets: &str) -> Result<Entities, String> {
        if names.is_empty() {
            return Err("entities.names must name at least one legal entity".into());
        }
        let mut known: Vec<Entity> = Vec::with_capacity(names.len());
        for name in names {
            if name.trim().is_empty() || name.trim() != name {
                return Err(format!("entities.names: {name:?} is not a registered name (blank or padded)"));
            }
            if known.iter().any(|e| e.as_str() == name) {
                return Err(format!("entities.names lists {name:?} twice"));
            }
            known.push(Entity(Arc::from(name.as_str())));
        }
        let wallets = known
            .iter()
            .find(|e| e.as_str() == wallets)
            .cloned()
            .ok_or_else(|| format!("entities.wallets is {wallets:?}, which is not one of entities.names"))?;
        Ok(Entities { known, wallets })
    }

    /// The configured entity called `name`, or why there is none.
    pub fn resolve(&self, name: &str) -> Result<Entity, String> {
        self.known.iter().find(|e| e.as_str() == name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.known.iter().map(Entity::as_str).collect();
            format!("the legal entity {name:?} is not configured (entities.names: {})", known.join("; "))
        })
    }

    /// The entity that holds customer wallets.
    pub fn wallets(&self) -> &Entity {
        &self.wallets
    }
}

#[cfg(test)]
mod tests {
    use super::Entities;

    #[test]
    fn only_configured_entities_resolve() {
        let names = ["Phoenix Hub Liberia, Inc.".to_string(), "Cinrique Inc.".to_string()];
        let entities = Entities::new(&names, "Phoenix Hub Liberia, Inc.").unwrap();
        assert_eq!(entities.resolve("Cinrique Inc.").unwrap().as_str(), "Cinrique Inc.");
        assert!(entities.resolve("Cinrique Inc").unwrap_err().contains("not configured"));
        assert_eq!(entities.wallets().as_str(), "Phoenix Hub Liberia, Inc.");
        assert!(Entities::new(&names, "Soxara").is_err());
        assert!(Entities::new(&[], "Soxara").is_err());
        assert!(Entities::new(&[names[0].clone(), names[0].clone()], &names[0]).is_err());
    }
}
