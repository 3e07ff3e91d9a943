//! Stand-in for `proto::tfplugin6` in the fuzz build: only the message shapes that
//! `provider/src/{value,diag}.rs` touch, with the same field names as prost generates. Keeps the
//! fuzz build small (no tonic, kube or aws-lc) while fuzzing the very same source files.

/// The subset of tfplugin6 messages used by the codec and diagnostics.
pub mod tfplugin6 {
    /// `DynamicValue`
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct DynamicValue {
        pub msgpack: Vec<u8>,
        pub json: Vec<u8>,
    }

    /// `AttributePath`
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct AttributePath {
        pub steps: Vec<attribute_path::Step>,
    }

    pub mod attribute_path {
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Step {
            pub selector: Option<step::Selector>,
        }
        pub mod step {
            #[derive(Debug, Clone, PartialEq)]
            pub enum Selector {
                AttributeName(String),
                ElementKeyString(String),
                ElementKeyInt(i64),
            }
        }
    }

    /// `Diagnostic`
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Diagnostic {
        pub severity: i32,
        pub summary: String,
        pub detail: String,
        pub attribute: Option<AttributePath>,
    }

    pub mod diagnostic {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Severity {
            Invalid = 0,
            Error = 1,
            Warning = 2,
        }
    }
}
