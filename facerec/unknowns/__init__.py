"""People nobody has named yet: unknown faces kept on request and grouped into candidate people (issue 21)."""
