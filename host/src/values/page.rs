//! Lists come in cursor pages: `limit` items after `starting_after` (the
//! last id of the previous page), and whether there are more.

use serde::Serialize;

use super::status::ObjectType;

/// Items a page holds unless the request says (`limit`).
pub const PAGE_LIMIT_DEFAULT: usize = 10;
/// The most items a page may hold.
pub const PAGE_LIMIT_MAX: usize = 100;

/// Which page a list request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    /// The last id of the previous page.
    pub starting_after: Option<String>,
}

impl Default for PageRequest {
    fn default() -> PageRequest {
        PageRequest { limit: PAGE_LIMIT_DEFAULT, starting_after: None }
    }
}

/// A page of a list: the list object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T: Serialize> {
    object: ObjectType,
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T: Serialize> Page<T> {
    pub fn new(data: Vec<T>, has_more: bool) -> Page<T> {
        Page { object: ObjectType::List, data, has_more }
    }

    /// A page from up to `limit + 1` items fetched: the extra one only says
    /// that there are more.
    pub fn from_fetched(mut fetched: Vec<T>, limit: usize) -> Page<T> {
        let has_more = fetched.len() > limit;
        fetched.truncate(limit);
        Page::new(fetched, has_more)
    }
}
