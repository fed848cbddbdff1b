-- Terms: batch_terms() for POST /terms/batch (sql/batches.sql). The term
-- events are recorded by the triggers of registration.sql.

-- Create terms, or update one, items applied in order, one row per item. An
-- item without a sourced_id updates the term with that code (any letter
-- case: terms_code_key, the unique index of migration 0016 on
-- fold_case(code), decides what is the same code; the stored code is kept).
-- An item with one (sourced_ids[n]; a null array: none) matches the term
-- with that sourced_id and sets its code too, or creates one with it; the
-- code is then only unique: another term's is code-taken, and nothing of
-- the item changes (the check reads under no lock, as batch_students()
-- does for emails). Item n's title, starts_on and ends_on always
-- apply; each other field applies when its set_...[n] says so (it may set
-- null), else an update keeps the stored value and a create stores null.
--
-- Outcomes: created, updated, unchanged, code-taken; and invalid when the
-- term as it would be breaks one of its check constraints (out_of_order
-- names it: terms_dates_ordered, then terms_registration_ordered, the order
-- in which PostgreSQL checks them), as PATCH /terms/{id} refuses it, and
-- nothing of that item changes. A term created by a concurrent transaction after the
-- lookup makes the insert do nothing (ON CONFLICT waits for that
-- transaction); the lookup then finds it.
create or replace function batch_terms(
    codes text[],
    titles text[],
    starts date[],
    ends date[],
    set_opens boolean[],
    opens timestamptz[],
    set_closes boolean[],
    closes timestamptz[],
    set_deadlines boolean[],
    deadlines timestamptz[],
    set_limits boolean[],
    limits numeric[],
    sourced_ids text[],
    actor text
)
returns table (
    item bigint,
    outcome text,
    out_of_order text,
    id bigint,
    code text,
    title text,
    starts_on date,
    ends_on date,
    registration_opens_at timestamptz,
    registration_closes_at timestamptz,
    drop_deadline timestamptz,
    max_credits numeric,
    created_at timestamptz,
    sourced_id text
)
language plpgsql as $$
#variable_conflict use_column
declare
    it record;
    locked bigint;
    new_opens timestamptz;
    new_closes timestamptz;
    new_deadline timestamptz;
    new_limit numeric;
begin
    perform set_config('enrollment.actor', actor, true);
    -- A new max_credits may promote students waiting in the term's courses:
    -- the feed locks of those courses first, before any change
    -- (lock_term_waits(), registration.sql), term by term in id order. A
    -- term the batch creates has no course yet.
    for locked in
        select x.id from terms x
        where fold_case(x.code) in (
            select fold_case(t.c) from unnest(codes, set_limits, sourced_ids) as t (c, s, named)
            where t.s and t.named is null
        )
        union
        select x.id from terms x
        where x.sourced_id in (
            select t.named from unnest(set_limits, sourced_ids) as t (s, named) where t.s
        )
        order by 1
    loop
        perform lock_term_waits(locked);
    end loop;
    for it in
        select *
        from unnest(codes, titles, starts, ends, set_opens, opens, set_closes, closes,
                    set_deadlines, deadlines, set_limits, limits, sourced_ids)
            with ordinality as t (new_code, new_title, new_starts, new_ends, set_open, item_open,
                                  set_close, item_close, set_deadline, item_deadline,
                                  set_limit, item_limit, named, n)
        order by n
    loop
        item := it.n;
        out_of_order := null;
        loop
            if it.named is null then
                select x.id, x.code, x.title, x.starts_on, x.ends_on, x.registration_opens_at,
                       x.registration_closes_at, x.drop_deadline, x.max_credits, x.created_at,
                       x.sourced_id
                into id, code, title, starts_on, ends_on, registration_opens_at,
                     registration_closes_at, drop_deadline, max_credits, created_at, sourced_id
                from terms x
                where fold_case(x.code) = fold_case(it.new_code)
                for no key update;
            else
                select x.id, x.code, x.title, x.starts_on, x.ends_on, x.registration_opens_at,
                       x.registration_closes_at, x.drop_deadline, x.max_credits, x.created_at,
                       x.sourced_id
                into id, code, title, starts_on, ends_on, registration_opens_at,
                     registration_closes_at, drop_deadline, max_credits, created_at, sourced_id
                from terms x
                where x.sourced_id = it.named
                for no key update;
            end if;
            if found then
                new_opens := case when it.set_open then it.item_open else registration_opens_at end;
                new_closes := case when it.set_close then it.item_close
                                   else registration_closes_at end;
                new_deadline := case when it.set_deadline then it.item_deadline
                                     else drop_deadline end;
                new_limit := case when it.set_limit then it.item_limit else max_credits end;
            else
                new_opens := it.item_open;
                new_closes := it.item_close;
                new_deadline := it.item_deadline;
                new_limit := it.item_limit;
            end if;
            if it.new_starts > it.new_ends then
                outcome := 'invalid';
                out_of_order := 'terms_dates_ordered';
            elsif new_opens >= new_closes then
                outcome := 'invalid';
                out_of_order := 'terms_registration_ordered';
            elsif found then
                if it.named is not null and exists (
                    select from terms x
                    where fold_case(x.code) = fold_case(it.new_code) and x.id <> batch_terms.id
                ) then
                    outcome := 'code-taken';
                elsif title = it.new_title and starts_on = it.new_starts
                        and ends_on = it.new_ends
                        and registration_opens_at is not distinct from new_opens
                        and registration_closes_at is not distinct from new_closes
                        and drop_deadline is not distinct from new_deadline
                        and max_credits is not distinct from new_limit
                        and (it.named is null or code = it.new_code) then
                    outcome := 'unchanged';
                else
                    update terms x
                    set code = case when it.named is null then x.code else it.new_code end,
                        title = it.new_title, starts_on = it.new_starts, ends_on = it.new_ends,
                        registration_opens_at = new_opens, registration_closes_at = new_closes,
                        drop_deadline = new_deadline, max_credits = new_limit
                    where x.id = batch_terms.id
                    returning x.code, x.title, x.starts_on, x.ends_on, x.registration_opens_at,
                              x.registration_closes_at, x.drop_deadline, x.max_credits
                    into code, title, starts_on, ends_on, registration_opens_at,
                         registration_closes_at, drop_deadline, max_credits;
                    outcome := 'updated';
                end if;
            else
                insert into terms (code, title, starts_on, ends_on, registration_opens_at,
                                   registration_closes_at, drop_deadline, max_credits, sourced_id)
                values (it.new_code, it.new_title, it.new_starts, it.new_ends, new_opens,
                        new_closes, new_deadline, new_limit, sourced_id_or_new(it.named))
                on conflict do nothing
                returning terms.id, terms.code, terms.title, terms.starts_on, terms.ends_on,
                          terms.registration_opens_at, terms.registration_closes_at,
                          terms.drop_deadline, terms.max_credits, terms.created_at,
                          terms.sourced_id
                into id, code, title, starts_on, ends_on, registration_opens_at,
                     registration_closes_at, drop_deadline, max_credits, created_at, sourced_id;
                if found then
                    outcome := 'created';
                elsif it.named is null
                      or exists (select from terms x where x.sourced_id = it.named) then
                    continue;  -- created concurrently: look it up again
                else
                    outcome := 'code-taken';  -- not the sourced_id: the code
                end if;
            end if;
            exit;
        end loop;
        return next;
    end loop;
end;
$$;

-- batch_terms as the release before sourced_ids called it (a rolling
-- deploy's old instances). A later release drops it.
create or replace function batch_terms(
    codes text[],
    titles text[],
    starts date[],
    ends date[],
    set_opens boolean[],
    opens timestamptz[],
    set_closes boolean[],
    closes timestamptz[],
    set_deadlines boolean[],
    deadlines timestamptz[],
    set_limits boolean[],
    limits numeric[],
    actor text
)
returns table (
    item bigint,
    outcome text,
    out_of_order text,
    id bigint,
    code text,
    title text,
    starts_on date,
    ends_on date,
    registration_opens_at timestamptz,
    registration_closes_at timestamptz,
    drop_deadline timestamptz,
    max_credits numeric,
    created_at timestamptz
)
language sql as $$
    select b.item, b.outcome, b.out_of_order, b.id, b.code, b.title, b.starts_on, b.ends_on,
           b.registration_opens_at, b.registration_closes_at, b.drop_deadline, b.max_credits,
           b.created_at
    from batch_terms(codes, titles, starts, ends, set_opens, opens, set_closes, closes,
                     set_deadlines, deadlines, set_limits, limits, null::text[], actor) b
$$;
