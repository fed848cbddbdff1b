-- ?q=, the rule migration 0011 keeps (search_narrows()).

-- name: narrows
-- Whether the trigram indexes can narrow a search for the text $1: the
-- search functions refuse one they cannot; with ?email= or ?code= too the
-- lookup is by that unique index, and the service asks first, so that a ?q=
-- is refused alike whatever it comes with.
select search_narrows($1);
