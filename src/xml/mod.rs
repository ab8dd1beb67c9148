//! XML tree with namespaces and source positions, structural diff with placeholders,
//! an XPath subset, and pretty-printing.

pub mod diff;
pub mod path;
pub mod tree;

pub use diff::{CompareOptions, Comparison, DiffKind, Difference, compare};
pub use path::{Path, PathError, PathValue};
pub use tree::{Attr, Element, Node, Pos, XmlError, parse, pretty};
