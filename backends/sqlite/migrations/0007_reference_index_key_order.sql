-- The reference index leads with the target's id and the parameter, then the referring
-- resource's key: the rows of one target by one parameter come in key order whatever the
-- target's type, so a page of `Observation?patient=X&...` (`patient` targets Patient and Group,
-- so a bare id leaves the type open) walks them and stops at its limit instead of sorting every
-- Observation of the patient first. The target's type, when a search names it, is a filter read
-- from the same index.
DROP INDEX search_reference_target;
CREATE INDEX search_reference_target ON search_reference (target_id, param, resource_type, id, target_type);
