"""Running a scenario: the host session, what it observes, the expectations, the record."""
