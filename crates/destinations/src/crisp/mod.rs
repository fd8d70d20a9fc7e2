//! A catalog entry: manifest and logo. No mode is implemented yet.
