//! Server-side apply of a set of objects (issue 6): dry-run, ordering, inventory, prune,
//! health. Being written.
