//! Packs: model, loading with positions, templates. (STUB)
