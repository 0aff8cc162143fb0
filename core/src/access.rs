//! Who may read and write which document: the pure policy, from role and site tree.
