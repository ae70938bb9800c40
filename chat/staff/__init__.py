"""What staff see of the conversations beyond the admin's own pages."""
