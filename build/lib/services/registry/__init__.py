"""Registry: regions, communities, institutions, practitioners, teams, residents, contracts, catalogues."""
