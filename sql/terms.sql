-- Terms (migration 0016). Their events are recorded by triggers
-- (sql/functions/registration.sql).

-- name: get_term
-- One term by id, and the version of its row: xmin, the value of its ETag
-- (why xmin: service/conditional.py).
select id, code, title, starts_on, ends_on, registration_opens_at, registration_closes_at,
       drop_deadline, max_credits, created_at, sourced_id, xmin::text
from terms
where id = $1;

-- name: list_terms
-- A page of terms after the cursor id ($1), in id order; $2 is the page size.
select id, code, title, starts_on, ends_on, registration_opens_at, registration_closes_at,
       drop_deadline, max_credits, created_at, sourced_id
from terms
where id > $1
order by id
limit $2;

-- name: list_terms_by_code
-- ?code=: the term with that code in any letter case (the unique index
-- terms_code_key), if after the cursor id ($1); $3 is the page size.
select id, code, title, starts_on, ends_on, registration_opens_at, registration_closes_at,
       drop_deadline, max_credits, created_at, sourced_id
from terms
where fold_case(code) = fold_case($2) and id > $1
order by id
limit $3;

-- name: list_terms_by_sourced_id
-- ?sourced_id=: the term with that sourced_id (the unique index
-- terms_sourced_id_key of migration 0019), if after the cursor id ($1);
-- with ?code= ($3, null: not given) too, only if its code is that one.
select id, code, title, starts_on, ends_on, registration_opens_at, registration_closes_at,
       drop_deadline, max_credits, created_at, sourced_id
from terms
where sourced_id = $2 and id > $1 and ($3::text is null or fold_case(code) = fold_case($3));

-- name: create_term
-- A new term, with :sourced_id or a new UUID (sourced_id_or_new(),
-- sql/functions/sourced_ids.sql); a taken code raises a unique violation on
-- terms_code_key, a taken sourced_id on terms_sourced_id_key, and dates out
-- of order a check violation on terms_dates_ordered or
-- terms_registration_ordered. :actor is the actor its event records (see
-- the header of sql/events.sql).
insert into terms (
    code, title, starts_on, ends_on, registration_opens_at, registration_closes_at,
    drop_deadline, max_credits, sourced_id
)
select :code, :title, :starts_on, :ends_on, :registration_opens_at, :registration_closes_at,
       :drop_deadline, :max_credits, sourced_id_or_new(:sourced_id)
from (select set_config('enrollment.actor', :actor, true)) as actor
returning terms.id, code, title, starts_on, ends_on, registration_opens_at,
    registration_closes_at, drop_deadline, max_credits, created_at, sourced_id;

-- name: lock_term_waits
-- Before a change of the term's max_credits, in its transaction and before
-- its first write: the feed locks of the courses of the term where someone
-- waits, whom a raised limit may promote (sql/functions/registration.sql).
select lock_term_waits($1::bigint);

-- name: update_term
-- Change the given fields: a null :code, :title, :starts_on or :ends_on
-- keeps the stored value; the others may be set to null, so each comes
-- with a :set_... saying whether it applies. The term as changed must keep
-- terms_dates_ordered and terms_registration_ordered (a check violation
-- otherwise). :if_match: the versions If-Match accepts (null: any); the row
-- changes only if its xmin is one of them, re-checked on the newest version
-- when a concurrent change commits first, so the compare and the write are
-- one step. Returns the new version.
update terms
set code = coalesce(:code, code),
    title = coalesce(:title, title),
    starts_on = coalesce(:starts_on, starts_on),
    ends_on = coalesce(:ends_on, ends_on),
    registration_opens_at = case when :set_registration_opens_at::boolean
        then :registration_opens_at::timestamptz else registration_opens_at end,
    registration_closes_at = case when :set_registration_closes_at::boolean
        then :registration_closes_at::timestamptz else registration_closes_at end,
    drop_deadline = case when :set_drop_deadline::boolean
        then :drop_deadline::timestamptz else drop_deadline end,
    max_credits = case when :set_max_credits::boolean
        then :max_credits::numeric else max_credits end
from (select set_config('enrollment.actor', :actor, true)) as actor
where id = :term_id and (:if_match::text[] is null or terms.xmin::text = any(:if_match::text[]))
returning terms.id, code, title, starts_on, ends_on, registration_opens_at,
    registration_closes_at, drop_deadline, max_credits, created_at, sourced_id,
    terms.xmin::text;

-- name: delete_term
-- Delete a term; a course of it raises a foreign key violation
-- (courses_term_id_fkey), the students' settings in it go with it (ON DELETE
-- CASCADE). $2: the versions If-Match accepts (null: any), compared as in
-- update_term. $3: the actor.
delete from terms
using (select set_config('enrollment.actor', $3, true)) as actor
where id = $1 and ($2::text[] is null or terms.xmin::text = any($2::text[]))
returning id;
