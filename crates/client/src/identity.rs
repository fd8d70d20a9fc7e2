//! Who the visitor is: an anonymous id kept across visits, the user id and
//! traits once `identify` gave them, the group. Stored where Segment's
//! libraries keep them, so a site that ran Segment keeps its visitors' ids.

use js_sys::Object;
use wasm_bindgen::JsValue;

use crate::{browser, js, storage};

pub(crate) const ANONYMOUS_ID: &str = "ajs_anonymous_id";
pub(crate) const USER_ID: &str = "ajs_user_id";
pub(crate) const USER_TRAITS: &str = "ajs_user_traits";
pub(crate) const GROUP_ID: &str = "ajs_group_id";
pub(crate) const GROUP_TRAITS: &str = "ajs_group_properties";

pub struct Identity {
    anonymous_id: String,
    user_id: Option<String>,
    traits: Object,
    group_id: Option<String>,
    group_traits: Object,
    /// The cookie domain (top domain of the page), found once.
    domain: Option<String>,
}

fn load_object(key: &str) -> Object {
    storage::get_item(key)
        .and_then(|s| js::parse(&s))
        .and_then(|v| js::as_object(&v))
        .unwrap_or_default()
}

fn store_object(key: &str, value: &Object) {
    if let Some(s) = js::stringify(value) {
        storage::set_item(key, &s);
    }
}

impl Identity {
    pub fn load() -> Identity {
        let domain = storage::top_domain();
        let anonymous_id = storage::load_id(ANONYMOUS_ID).unwrap_or_else(browser::random_uuid);
        // Written back every start: restores a cookie cleared while
        // localStorage kept the id, and the other way round.
        storage::store_id(ANONYMOUS_ID, &anonymous_id, domain.as_deref());
        Identity {
            anonymous_id,
            user_id: storage::load_id(USER_ID),
            traits: load_object(USER_TRAITS),
            group_id: storage::load_id(GROUP_ID),
            group_traits: load_object(GROUP_TRAITS),
            domain,
        }
    }

    pub fn anonymous_id(&self) -> &str {
        &self.anonymous_id
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    pub fn traits(&self) -> &Object {
        &self.traits
    }

    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    pub fn group_traits(&self) -> &Object {
        &self.group_traits
    }

    pub(crate) fn set_anonymous_id(&mut self, id: &str) {
        storage::store_id(ANONYMOUS_ID, id, self.domain.as_deref());
        self.anonymous_id = id.to_string();
    }

    /// A new user id; a different user's traits are not carried over.
    pub(crate) fn set_user_id(&mut self, id: &str) {
        if self.user_id.as_deref().is_some_and(|old| old != id) {
            self.traits = Object::new();
            storage::remove_item(USER_TRAITS);
        }
        storage::store_id(USER_ID, id, self.domain.as_deref());
        self.user_id = Some(id.to_string());
    }

    /// Merges `traits` into the stored ones.
    pub(crate) fn add_traits(&mut self, traits: Option<&Object>) {
        if let Some(t) = traits {
            Object::assign(&self.traits, t);
            store_object(USER_TRAITS, &self.traits);
        }
    }

    pub(crate) fn set_group(&mut self, id: Option<&str>, traits: Option<&Object>) {
        if let Some(id) = id {
            if self.group_id.as_deref().is_some_and(|old| old != id) {
                self.group_traits = Object::new();
            }
            storage::store_id(GROUP_ID, id, self.domain.as_deref());
            self.group_id = Some(id.to_string());
        }
        if let Some(t) = traits {
            Object::assign(&self.group_traits, t);
        }
        store_object(GROUP_TRAITS, &self.group_traits);
    }

    /// Forgets the user and group, and starts a new anonymous id.
    pub(crate) fn reset(&mut self) {
        let d = self.domain.as_deref();
        for key in [USER_ID, GROUP_ID] {
            storage::remove_id(key, d);
        }
        for key in [USER_TRAITS, GROUP_TRAITS] {
            storage::remove_item(key);
        }
        storage::remove_id(ANONYMOUS_ID, d);
        self.user_id = None;
        self.group_id = None;
        self.traits = Object::new();
        self.group_traits = Object::new();
        let id = browser::random_uuid();
        self.set_anonymous_id(&id);
    }

    /// `userId` for an event: the id or `null`, as analytics-next sends it.
    pub(crate) fn user_id_value(&self) -> JsValue {
        self.user_id
            .as_deref()
            .map(JsValue::from_str)
            .unwrap_or(JsValue::NULL)
    }
}
