use std::collections::{BTreeMap, HashMap};

use super::config::{ProviderConfig, Template};
use crate::config::manifest::VariableDecl;

/// App variables and the providers their values come from. Built once.
#[derive(Debug)]
pub struct VariablesState {
    declared: BTreeMap<String, VariableDecl>,
    providers: Vec<ProviderConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    #[error(
        "variable `{0}` is required but has no value: set SPIN_VARIABLE_{upper} or give it a value in the runtime config's [[variables_provider]]",
        upper = .0.to_ascii_uppercase()
    )]
    MissingRequired(String),
    #[error("variable `{0}` is not declared in the manifest's [variables]")]
    Undeclared(String),
    #[error("component `{component}` variable `{name}`: {message}")]
    BadTemplate {
        component: String,
        name: String,
        message: String,
    },
}

impl VariablesState {
    /// `providers` in the runtime config's order; as in Spin, the default
    /// `SPIN_VARIABLE_*` environment provider is appended *last*, so a value in
    /// a configured provider (e.g. a static development secret) wins over the
    /// environment. With no provider configured, the environment alone.
    pub fn new(
        declared: BTreeMap<String, VariableDecl>,
        mut providers: Vec<ProviderConfig>,
    ) -> Self {
        providers.push(ProviderConfig::Env {
            prefix: ProviderConfig::DEFAULT_ENV_PREFIX.to_string(),
            dotenv: BTreeMap::new(),
        });
        Self {
            declared,
            providers,
        }
    }

    /// The value of an app variable: the first provider that has it, else its default.
    pub fn resolve(&self, name: &str) -> Result<String, VariableError> {
        let decl = self
            .declared
            .get(name)
            .ok_or_else(|| VariableError::Undeclared(name.to_string()))?;
        if let Some(value) = self.providers.iter().find_map(|p| p.lookup(name)) {
            return Ok(value);
        }
        decl.default
            .clone()
            .ok_or_else(|| VariableError::MissingRequired(name.to_string()))
    }

    /// Fails on the first required variable without a value, so start-up stops
    /// with a message naming it.
    pub fn check_required(&self) -> Result<(), VariableError> {
        for name in self.declared.keys() {
            self.resolve(name)?;
        }
        Ok(())
    }

    /// Resolves one component's `variables` table. Done once at load time:
    /// every provider Nexa has is fixed for the life of the process.
    pub fn for_component(
        &self,
        component: &str,
        templates: &BTreeMap<String, String>,
    ) -> Result<ComponentVariables, VariableError> {
        let mut values = HashMap::new();
        for (name, text) in templates {
            let bad = |message: String| VariableError::BadTemplate {
                component: component.to_string(),
                name: name.clone(),
                message,
            };
            let template = Template::parse(text).map_err(|e| bad(e.to_string()))?;
            let value = template
                .render(|var| self.resolve(var))
                .map_err(|e| bad(e.to_string()))?;
            values.insert(name.clone(), value);
        }
        Ok(ComponentVariables { values })
    }
}

/// The variables one component may read, already resolved.
#[derive(Debug, Default)]
pub struct ComponentVariables {
    values: HashMap<String, String>,
}

impl ComponentVariables {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(default: Option<&str>, required: bool) -> VariableDecl {
        VariableDecl {
            default: default.map(str::to_string),
            required,
            ..Default::default()
        }
    }

    #[test]
    fn providers_in_order_then_default() {
        let declared = BTreeMap::from([
            ("a".to_string(), decl(Some("default-a"), false)),
            ("b".to_string(), decl(None, true)),
            ("nexa_test_env_var".to_string(), decl(Some("d"), false)),
        ]);
        let static_values = BTreeMap::from([("b".to_string(), "static-b".to_string())]);
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("SPIN_VARIABLE_NEXA_TEST_ENV_VAR", "from-env") };
        let state = VariablesState::new(declared, vec![ProviderConfig::Static(static_values)]);
        assert_eq!(state.resolve("a").unwrap(), "default-a");
        assert_eq!(state.resolve("b").unwrap(), "static-b");
        assert_eq!(state.resolve("nexa_test_env_var").unwrap(), "from-env");
        // A configured provider comes before the environment (as in Spin).
        // SAFETY: as above.
        unsafe { std::env::set_var("SPIN_VARIABLE_B", "env-b") };
        assert_eq!(state.resolve("b").unwrap(), "static-b");
        assert!(state.check_required().is_ok());
        let component = state
            .for_component(
                "c",
                &BTreeMap::from([("url".to_string(), "x://{{ a }}/{{b}}".to_string())]),
            )
            .unwrap();
        assert_eq!(component.get("url"), Some("x://default-a/static-b"));
        assert_eq!(component.get("a"), None);
    }

    #[test]
    fn missing_required_is_named() {
        let state = VariablesState::new(
            BTreeMap::from([("jwt_secret".to_string(), decl(None, true))]),
            vec![],
        );
        let error = state.check_required().unwrap_err().to_string();
        assert!(error.contains("jwt_secret"), "{error}");
        assert!(error.contains("SPIN_VARIABLE_JWT_SECRET"), "{error}");
    }
}
