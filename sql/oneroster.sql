-- The OneRoster provider (service/repositories/oneroster.py, docs/oneroster.md).
--
-- Each statement answers one page of a collection and how many records the
-- filter matches (the first column of every row; a page past the end is
-- one row whose record is null), from one snapshot, so a page and its
-- X-Total-Count agree. The records are built by the functions of
-- sql/functions/oneroster.sql (oneroster_user() and the others).
--
-- A collection has a statement per shape of filter, so that an index serves
-- the two a consumer's sync sends: `sourcedId='x'` (*_by_sourced_id, the
-- unique index on sourced_id) and `dateLastModified>'t'` or `>=` (*_since,
-- the index on modified_at or enrolled_at, in that order); every other
-- filter reads the collection in id order (the primary key) and tests each
-- record. *_sorted serves `sort=`: every match is read and sorted.
-- Parameters every statement takes:
--   :base, :school   what hrefs start with; the school's sourcedId
--   :fields, :ops, :vals, :any_of   the filter's predicates not served by
--                    the shape, as parallel arrays (oneroster_match()); empty: none
--   :picked          the fields `fields=` names (null: all)
--   :lim, :off       the page
-- and, by shape:
--   :sid             the sourcedId
--   :since, :inclusive   dateLastModified > :since (>= when inclusive);
--                    records deleted since then follow the live ones, in the
--                    order of their deletion (oneroster_gone()). A null
--                    :since in *_by_sourced_id and *_sorted: no tombstones.
--   :sort, :descending   the field to sort on (null: id order) and the direction

-- name: users
-- Students as users, all of them, in the order of students_pkey: the page's
-- keys first, then their records; the count is a count of students, the
-- whole of it (docs/oneroster.md says what that costs). No filter: one
-- that an index does not serve is *_sorted's.
select m.total, p.record
from (select count(*) as total from students) m
left join lateral (
    select q.n, (select case when :picked::text[] is null then oneroster_user(s, :base::text, :school::text) else oneroster_pick(oneroster_user(s, :base::text, :school::text), :picked::text[]) end
                 from students s
                 where s.id = q.id) as record
    from (select s.id, row_number() over (order by s.id) as n
          from students s
          order by s.id
          limit :lim::bigint offset :off::bigint) q
) p on true
order by p.n;

-- name: users_by_sourced_id
-- The record of sourcedId :sid (students_sourced_id_key), then those deleted
-- since :since.
select n.live + n.gone as total, p.record
from (
    select (select count(*)
            from students s
            where s.sourced_id = :sid::text
              and (cardinality(:fields::text[]) = 0
                   or oneroster_match(oneroster_user(s, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))) as live,
           (select count(*) from oneroster_gone('student', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, null::timestamptz as at, case when :picked::text[] is null then oneroster_user(s, :base::text, :school::text) else oneroster_pick(oneroster_user(s, :base::text, :school::text), :picked::text[]) end as record
     from students s
     where s.sourced_id = :sid::text
       and (cardinality(:fields::text[]) = 0
            or oneroster_match(oneroster_user(s, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
     limit :lim::bigint offset :off::bigint)
    union all
    (select 1, g.deleted_at, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from oneroster_gone('student', :since::timestamptz, :inclusive::boolean,
          :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
     order by g.deleted_at
     limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
     offset greatest(:off::bigint - n.live, 0))
) p on true
order by p.section, p.at;

-- name: users_since
-- Records changed since :since, in the order of their change (students_modified_at,
-- which also bounds the count): the page's keys first, then their records.
-- Then those deleted since.
select n.live + n.gone as total, p.record
from (
    select (select count(*)
            from students s
            where s.modified_at >= :since::timestamptz
              and (:inclusive::boolean or s.modified_at > :since::timestamptz)
              and (cardinality(:fields::text[]) = 0
                   or oneroster_match(oneroster_user(s, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))) as live,
           (select count(*) from oneroster_gone('student', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, q.n, (select case when :picked::text[] is null then oneroster_user(s, :base::text, :school::text) else oneroster_pick(oneroster_user(s, :base::text, :school::text), :picked::text[]) end
                              from students s
                              where s.id = q.id) as record
     from (select s.id, row_number() over (order by s.modified_at, s.id) as n
           from students s
           where s.modified_at >= :since::timestamptz
             and (:inclusive::boolean or s.modified_at > :since::timestamptz)
             and (cardinality(:fields::text[]) = 0
                  or oneroster_match(oneroster_user(s, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
           order by s.modified_at, s.id
           limit :lim::bigint offset :off::bigint) q)
    union all
    (select 1, 0, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from (select g.record
           from oneroster_gone('student', :since::timestamptz, :inclusive::boolean,
                :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
           order by g.deleted_at
           limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
           offset greatest(:off::bigint - n.live, 0)) g)
) p on true
order by p.section, p.n;

-- name: users_sorted
-- Every match (the sourcedId :sid, changed since :since: either null for
-- none), sorted on the field :sort (null: id order) in code point order,
-- ascending or :descending, then by id: every match is read, tested and
-- sorted, the matches' keys kept once for the count and the page. Then
-- those deleted since :since. Also the statement of a filter no index
-- serves (OR, or predicates on other fields alone).
with matched as materialized (
    select s.id,
           case when :sort::text is not null
                then oneroster_user(s, :base::text, :school::text) #>> string_to_array(:sort::text, '.')
           end as key
    from students s
    where (:sid::text is null or s.sourced_id = :sid::text)
          and (:since::timestamptz is null
               or s.modified_at >= :since::timestamptz
                  and (:inclusive::boolean or s.modified_at > :since::timestamptz))
          and (cardinality(:fields::text[]) = 0
               or oneroster_match(oneroster_user(s, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
)
select n.live + n.gone as total, p.record
from (
    select (select count(*) from matched) as live,
           (select count(*) from oneroster_gone('student', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, q.n, (select case when :picked::text[] is null then oneroster_user(s, :base::text, :school::text) else oneroster_pick(oneroster_user(s, :base::text, :school::text), :picked::text[]) end
                              from students s
                              where s.id = q.id) as record
     from (select m.id,
                  row_number() over (
                      order by case when :descending::boolean then null else m.key end collate "C",
                               case when :descending::boolean then m.key end collate "C" desc,
                               case when :descending::boolean then null else m.id end,
                               case when :descending::boolean then m.id end desc) as n
           from matched m
           order by n
           limit :lim::bigint offset :off::bigint) q)
    union all
    (select 1, 0, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from (select g.record
           from oneroster_gone('student', :since::timestamptz, :inclusive::boolean,
                :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
           order by g.deleted_at
           limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
           offset greatest(:off::bigint - n.live, 0)) g)
) p on true
order by p.section, p.n;

-- name: classes
-- Courses as classes, all of them, in the order of courses_pkey: the page's
-- keys first, then their records; the count is a count of courses, the
-- whole of it (docs/oneroster.md says what that costs). No filter: one
-- that an index does not serve is *_sorted's.
select m.total, p.record
from (select count(*) as total from courses) m
left join lateral (
    select q.n, (select case when :picked::text[] is null then oneroster_class(c, t.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_class(c, t.sourced_id, :base::text, :school::text), :picked::text[]) end
                 from courses c
                     left join terms t on t.id = c.term_id
                 where c.id = q.id) as record
    from (select c.id, row_number() over (order by c.id) as n
          from courses c
          order by c.id
          limit :lim::bigint offset :off::bigint) q
) p on true
order by p.n;

-- name: classes_by_sourced_id
-- The record of sourcedId :sid (courses_sourced_id_key), then those deleted
-- since :since.
select n.live + n.gone as total, p.record
from (
    select (select count(*)
            from courses c
                left join terms t on t.id = c.term_id
            where c.sourced_id = :sid::text
              and (cardinality(:fields::text[]) = 0
                   or oneroster_match(oneroster_class(c, t.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))) as live,
           (select count(*) from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, null::timestamptz as at, case when :picked::text[] is null then oneroster_class(c, t.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_class(c, t.sourced_id, :base::text, :school::text), :picked::text[]) end as record
     from courses c
         left join terms t on t.id = c.term_id
     where c.sourced_id = :sid::text
       and (cardinality(:fields::text[]) = 0
            or oneroster_match(oneroster_class(c, t.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
     limit :lim::bigint offset :off::bigint)
    union all
    (select 1, g.deleted_at, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
          :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
     order by g.deleted_at
     limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
     offset greatest(:off::bigint - n.live, 0))
) p on true
order by p.section, p.at;

-- name: classes_since
-- Records changed since :since, in the order of their change (courses_modified_at,
-- which also bounds the count): the page's keys first, then their records.
-- Then those deleted since.
select n.live + n.gone as total, p.record
from (
    select (select count(*)
            from courses c
                left join terms t on t.id = c.term_id
            where c.modified_at >= :since::timestamptz
              and (:inclusive::boolean or c.modified_at > :since::timestamptz)
              and (cardinality(:fields::text[]) = 0
                   or oneroster_match(oneroster_class(c, t.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))) as live,
           (select count(*) from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, q.n, (select case when :picked::text[] is null then oneroster_class(c, t.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_class(c, t.sourced_id, :base::text, :school::text), :picked::text[]) end
                              from courses c
                                  left join terms t on t.id = c.term_id
                              where c.id = q.id) as record
     from (select c.id, row_number() over (order by c.modified_at, c.id) as n
           from courses c
               left join terms t on t.id = c.term_id
           where c.modified_at >= :since::timestamptz
             and (:inclusive::boolean or c.modified_at > :since::timestamptz)
             and (cardinality(:fields::text[]) = 0
                  or oneroster_match(oneroster_class(c, t.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
           order by c.modified_at, c.id
           limit :lim::bigint offset :off::bigint) q)
    union all
    (select 1, 0, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from (select g.record
           from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
           order by g.deleted_at
           limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
           offset greatest(:off::bigint - n.live, 0)) g)
) p on true
order by p.section, p.n;

-- name: classes_sorted
-- Every match (the sourcedId :sid, changed since :since: either null for
-- none), sorted on the field :sort (null: id order) in code point order,
-- ascending or :descending, then by id: every match is read, tested and
-- sorted, the matches' keys kept once for the count and the page. Then
-- those deleted since :since. Also the statement of a filter no index
-- serves (OR, or predicates on other fields alone).
with matched as materialized (
    select c.id,
           case when :sort::text is not null
                then oneroster_class(c, t.sourced_id, :base::text, :school::text) #>> string_to_array(:sort::text, '.')
           end as key
    from courses c
        left join terms t on t.id = c.term_id
    where (:sid::text is null or c.sourced_id = :sid::text)
          and (:since::timestamptz is null
               or c.modified_at >= :since::timestamptz
                  and (:inclusive::boolean or c.modified_at > :since::timestamptz))
          and (cardinality(:fields::text[]) = 0
               or oneroster_match(oneroster_class(c, t.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
)
select n.live + n.gone as total, p.record
from (
    select (select count(*) from matched) as live,
           (select count(*) from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, q.n, (select case when :picked::text[] is null then oneroster_class(c, t.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_class(c, t.sourced_id, :base::text, :school::text), :picked::text[]) end
                              from courses c
                                  left join terms t on t.id = c.term_id
                              where c.id = q.id) as record
     from (select m.id,
                  row_number() over (
                      order by case when :descending::boolean then null else m.key end collate "C",
                               case when :descending::boolean then m.key end collate "C" desc,
                               case when :descending::boolean then null else m.id end,
                               case when :descending::boolean then m.id end desc) as n
           from matched m
           order by n
           limit :lim::bigint offset :off::bigint) q)
    union all
    (select 1, 0, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from (select g.record
           from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
           order by g.deleted_at
           limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
           offset greatest(:off::bigint - n.live, 0)) g)
) p on true
order by p.section, p.n;

-- name: courses
-- Courses as OneRoster courses, all of them, in the order of courses_pkey: the page's
-- keys first, then their records; the count is a count of courses, the
-- whole of it (docs/oneroster.md says what that costs). No filter: one
-- that an index does not serve is *_sorted's.
select m.total, p.record
from (select count(*) as total from courses) m
left join lateral (
    select q.n, (select case when :picked::text[] is null then oneroster_course(c, :base::text, :school::text) else oneroster_pick(oneroster_course(c, :base::text, :school::text), :picked::text[]) end
                 from courses c
                 where c.id = q.id) as record
    from (select c.id, row_number() over (order by c.id) as n
          from courses c
          order by c.id
          limit :lim::bigint offset :off::bigint) q
) p on true
order by p.n;

-- name: courses_by_sourced_id
-- The record of sourcedId :sid (courses_sourced_id_key), then those deleted
-- since :since.
select n.live + n.gone as total, p.record
from (
    select (select count(*)
            from courses c
            where c.sourced_id = :sid::text
              and (cardinality(:fields::text[]) = 0
                   or oneroster_match(oneroster_course(c, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))) as live,
           (select count(*) from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, null::timestamptz as at, case when :picked::text[] is null then oneroster_course(c, :base::text, :school::text) else oneroster_pick(oneroster_course(c, :base::text, :school::text), :picked::text[]) end as record
     from courses c
     where c.sourced_id = :sid::text
       and (cardinality(:fields::text[]) = 0
            or oneroster_match(oneroster_course(c, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
     limit :lim::bigint offset :off::bigint)
    union all
    (select 1, g.deleted_at, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
          :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
     order by g.deleted_at
     limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
     offset greatest(:off::bigint - n.live, 0))
) p on true
order by p.section, p.at;

-- name: courses_since
-- Records changed since :since, in the order of their change (courses_modified_at,
-- which also bounds the count): the page's keys first, then their records.
-- Then those deleted since.
select n.live + n.gone as total, p.record
from (
    select (select count(*)
            from courses c
            where c.modified_at >= :since::timestamptz
              and (:inclusive::boolean or c.modified_at > :since::timestamptz)
              and (cardinality(:fields::text[]) = 0
                   or oneroster_match(oneroster_course(c, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))) as live,
           (select count(*) from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, q.n, (select case when :picked::text[] is null then oneroster_course(c, :base::text, :school::text) else oneroster_pick(oneroster_course(c, :base::text, :school::text), :picked::text[]) end
                              from courses c
                              where c.id = q.id) as record
     from (select c.id, row_number() over (order by c.modified_at, c.id) as n
           from courses c
           where c.modified_at >= :since::timestamptz
             and (:inclusive::boolean or c.modified_at > :since::timestamptz)
             and (cardinality(:fields::text[]) = 0
                  or oneroster_match(oneroster_course(c, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
           order by c.modified_at, c.id
           limit :lim::bigint offset :off::bigint) q)
    union all
    (select 1, 0, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from (select g.record
           from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
           order by g.deleted_at
           limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
           offset greatest(:off::bigint - n.live, 0)) g)
) p on true
order by p.section, p.n;

-- name: courses_sorted
-- Every match (the sourcedId :sid, changed since :since: either null for
-- none), sorted on the field :sort (null: id order) in code point order,
-- ascending or :descending, then by id: every match is read, tested and
-- sorted, the matches' keys kept once for the count and the page. Then
-- those deleted since :since. Also the statement of a filter no index
-- serves (OR, or predicates on other fields alone).
with matched as materialized (
    select c.id,
           case when :sort::text is not null
                then oneroster_course(c, :base::text, :school::text) #>> string_to_array(:sort::text, '.')
           end as key
    from courses c
    where (:sid::text is null or c.sourced_id = :sid::text)
          and (:since::timestamptz is null
               or c.modified_at >= :since::timestamptz
                  and (:inclusive::boolean or c.modified_at > :since::timestamptz))
          and (cardinality(:fields::text[]) = 0
               or oneroster_match(oneroster_course(c, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
)
select n.live + n.gone as total, p.record
from (
    select (select count(*) from matched) as live,
           (select count(*) from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, q.n, (select case when :picked::text[] is null then oneroster_course(c, :base::text, :school::text) else oneroster_pick(oneroster_course(c, :base::text, :school::text), :picked::text[]) end
                              from courses c
                              where c.id = q.id) as record
     from (select m.id,
                  row_number() over (
                      order by case when :descending::boolean then null else m.key end collate "C",
                               case when :descending::boolean then m.key end collate "C" desc,
                               case when :descending::boolean then null else m.id end,
                               case when :descending::boolean then m.id end desc) as n
           from matched m
           order by n
           limit :lim::bigint offset :off::bigint) q)
    union all
    (select 1, 0, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from (select g.record
           from oneroster_gone('course', :since::timestamptz, :inclusive::boolean,
                :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
           order by g.deleted_at
           limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
           offset greatest(:off::bigint - n.live, 0)) g)
) p on true
order by p.section, p.n;

-- name: enrollments
-- Enrollments, all of them, in the order of student_courses_pkey: the page's
-- keys first, then their records; the count is a count of student_courses, the
-- whole of it (docs/oneroster.md says what that costs). No filter: one
-- that an index does not serve is *_sorted's.
select m.total, p.record
from (select count(*) as total from student_courses) m
left join lateral (
    select q.n, (select case when :picked::text[] is null then oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text), :picked::text[]) end
                 from student_courses e
                     join students s on s.id = e.student_id
                     join courses c on c.id = e.course_id
                 where e.student_id = q.student_id and e.course_id = q.course_id) as record
    from (select e.student_id, e.course_id, row_number() over (order by e.student_id, e.course_id) as n
          from student_courses e
          order by e.student_id, e.course_id
          limit :lim::bigint offset :off::bigint) q
) p on true
order by p.n;

-- name: enrollments_by_sourced_id
-- The record of sourcedId :sid (student_courses_sourced_id_key), then those deleted
-- since :since.
select n.live + n.gone as total, p.record
from (
    select (select count(*)
            from student_courses e
                join students s on s.id = e.student_id
                join courses c on c.id = e.course_id
            where e.sourced_id = :sid::text
              and (cardinality(:fields::text[]) = 0
                   or oneroster_match(oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))) as live,
           (select count(*) from oneroster_gone('enrollment', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, null::timestamptz as at, case when :picked::text[] is null then oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text), :picked::text[]) end as record
     from student_courses e
         join students s on s.id = e.student_id
         join courses c on c.id = e.course_id
     where e.sourced_id = :sid::text
       and (cardinality(:fields::text[]) = 0
            or oneroster_match(oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
     limit :lim::bigint offset :off::bigint)
    union all
    (select 1, g.deleted_at, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from oneroster_gone('enrollment', :since::timestamptz, :inclusive::boolean,
          :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
     order by g.deleted_at
     limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
     offset greatest(:off::bigint - n.live, 0))
) p on true
order by p.section, p.at;

-- name: enrollments_since
-- Records changed since :since, in the order of their change (student_courses_enrolled_at,
-- which also bounds the count): the page's keys first, then their records.
-- Then those deleted since.
select n.live + n.gone as total, p.record
from (
    select (select count(*)
            from student_courses e
            where e.enrolled_at >= :since::timestamptz
              and (:inclusive::boolean or e.enrolled_at > :since::timestamptz)
              and (cardinality(:fields::text[]) = 0
                   or exists (select from students s join courses c on c.id = e.course_id
                              where s.id = e.student_id
                                and oneroster_match(oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)))) as live,
           (select count(*) from oneroster_gone('enrollment', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, q.n, (select case when :picked::text[] is null then oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text), :picked::text[]) end
                              from student_courses e
                                  join students s on s.id = e.student_id
                                  join courses c on c.id = e.course_id
                              where e.student_id = q.student_id and e.course_id = q.course_id) as record
     from (select e.student_id, e.course_id, row_number() over (order by e.enrolled_at, e.student_id, e.course_id) as n
           from student_courses e
           where e.enrolled_at >= :since::timestamptz
             and (:inclusive::boolean or e.enrolled_at > :since::timestamptz)
             and (cardinality(:fields::text[]) = 0
                  or exists (select from students s join courses c on c.id = e.course_id
                             where s.id = e.student_id
                               and oneroster_match(oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)))
           order by e.enrolled_at, e.student_id, e.course_id
           limit :lim::bigint offset :off::bigint) q)
    union all
    (select 1, 0, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from (select g.record
           from oneroster_gone('enrollment', :since::timestamptz, :inclusive::boolean,
                :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
           order by g.deleted_at
           limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
           offset greatest(:off::bigint - n.live, 0)) g)
) p on true
order by p.section, p.n;

-- name: enrollments_sorted
-- Every match (the sourcedId :sid, changed since :since: either null for
-- none), sorted on the field :sort (null: id order) in code point order,
-- ascending or :descending, then by id: every match is read, tested and
-- sorted, the matches' keys kept once for the count and the page. Then
-- those deleted since :since. Also the statement of a filter no index
-- serves (OR, or predicates on other fields alone).
with matched as materialized (
    select e.student_id, e.course_id,
           case when :sort::text is not null
                then (select oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text) #>> string_to_array(:sort::text, '.')
                      from students s join courses c on c.id = e.course_id
                      where s.id = e.student_id)
           end as key
    from student_courses e
    where (:sid::text is null or e.sourced_id = :sid::text)
          and (:since::timestamptz is null
               or e.enrolled_at >= :since::timestamptz
                  and (:inclusive::boolean or e.enrolled_at > :since::timestamptz))
          and (cardinality(:fields::text[]) = 0
               or exists (select from students s join courses c on c.id = e.course_id
                          where s.id = e.student_id
                            and oneroster_match(oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)))
)
select n.live + n.gone as total, p.record
from (
    select (select count(*) from matched) as live,
           (select count(*) from oneroster_gone('enrollment', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, q.n, (select case when :picked::text[] is null then oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_enrollment(e, s.sourced_id, c.sourced_id, :base::text, :school::text), :picked::text[]) end
                              from student_courses e
                                  join students s on s.id = e.student_id
                                  join courses c on c.id = e.course_id
                              where e.student_id = q.student_id and e.course_id = q.course_id) as record
     from (select m.student_id, m.course_id,
                  row_number() over (
                      order by case when :descending::boolean then null else m.key end collate "C",
                               case when :descending::boolean then m.key end collate "C" desc,
                               case when :descending::boolean then null else m.student_id end, case when :descending::boolean then null else m.course_id end,
                               case when :descending::boolean then m.student_id end desc, case when :descending::boolean then m.course_id end desc) as n
           from matched m
           order by n
           limit :lim::bigint offset :off::bigint) q)
    union all
    (select 1, 0, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from (select g.record
           from oneroster_gone('enrollment', :since::timestamptz, :inclusive::boolean,
                :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
           order by g.deleted_at
           limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
           offset greatest(:off::bigint - n.live, 0)) g)
) p on true
order by p.section, p.n;

-- name: terms
-- Terms as academic sessions, of every shape of filter and sort, as
-- *_sorted: a school has tens of terms, read whole.
with matched as materialized (
    select t.id,
           case when :sort::text is not null
                then oneroster_academic_session(t) #>> string_to_array(:sort::text, '.')
           end as key
    from terms t
    where (:sid::text is null or t.sourced_id = :sid::text)
          and (:since::timestamptz is null
               or t.modified_at >= :since::timestamptz
                  and (:inclusive::boolean or t.modified_at > :since::timestamptz))
          and (cardinality(:fields::text[]) = 0
               or oneroster_match(oneroster_academic_session(t)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
)
select n.live + n.gone as total, p.record
from (
    select (select count(*) from matched) as live,
           (select count(*) from oneroster_gone('term', :since::timestamptz, :inclusive::boolean,
                                 :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)) as gone
    offset 0  -- kept whole: the page's bounds read n.live, not its count again
) n
left join lateral (
    (select 0 as section, q.n, (select case when :picked::text[] is null then oneroster_academic_session(t) else oneroster_pick(oneroster_academic_session(t), :picked::text[]) end from terms t where t.id = q.id) as record
     from (select m.id,
                  row_number() over (
                      order by case when :descending::boolean then null else m.key end collate "C",
                               case when :descending::boolean then m.key end collate "C" desc,
                               case when :descending::boolean then null else m.id end,
                               case when :descending::boolean then m.id end desc) as n
           from matched m
           order by n
           limit :lim::bigint offset :off::bigint) q)
    union all
    (select 1, 0, case when :picked::text[] is null then g.record else oneroster_pick(g.record, :picked::text[]) end
     from (select g.record
           from oneroster_gone('term', :since::timestamptz, :inclusive::boolean,
                :fields::text[], :ops::text[], :vals::text[], :any_of::boolean) g
           order by g.deleted_at
           limit greatest(:lim::bigint - greatest(n.live - :off::bigint, 0), 0)
           offset greatest(:off::bigint - n.live, 0)) g)
) p on true
order by p.section, p.n;

-- name: class_students
-- The students enrolled in the course of sourcedId :owner, as users
-- (student_courses_course_id_student_id_idx),
-- sorted as *_sorted; `found`: whether that course exists. No tombstones: a
-- deleted record belongs to nothing.
with matched as materialized (
    select s.id as id,
           case when :sort::text is not null
                then oneroster_user(s, :base::text, :school::text) #>> string_to_array(:sort::text, '.')
           end as key
    from student_courses e
        join students s on s.id = e.student_id
    where e.course_id = (select o.id from courses o where o.sourced_id = :owner::text)
      and (cardinality(:fields::text[]) = 0
           or oneroster_match(oneroster_user(s, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
)
select (select o.id from courses o where o.sourced_id = :owner::text) is not null as found,
       (select count(*) from matched) as total,
       p.record
from (select) one
left join lateral (
    select q.n, (select case when :picked::text[] is null then oneroster_user(s, :base::text, :school::text) else oneroster_pick(oneroster_user(s, :base::text, :school::text), :picked::text[]) end
                 from students s where s.id = q.id) as record
    from (select m.id,
                 row_number() over (
                     order by case when :descending::boolean then null else m.key end collate "C",
                              case when :descending::boolean then m.key end collate "C" desc,
                              case when :descending::boolean then null else m.id end,
                              case when :descending::boolean then m.id end desc) as n
          from matched m
          order by n
          limit :lim::bigint offset :off::bigint) q
) p on true
order by p.n;

-- name: student_classes
-- The courses the student of sourcedId :owner is enrolled in, as classes
-- (student_courses_pkey),
-- sorted as *_sorted; `found`: whether that student exists. No tombstones: a
-- deleted record belongs to nothing.
with matched as materialized (
    select c.id as id,
           case when :sort::text is not null
                then oneroster_class(c, t.sourced_id, :base::text, :school::text) #>> string_to_array(:sort::text, '.')
           end as key
    from student_courses e
        join courses c on c.id = e.course_id
        left join terms t on t.id = c.term_id
    where e.student_id = (select o.id from students o where o.sourced_id = :owner::text)
      and (cardinality(:fields::text[]) = 0
           or oneroster_match(oneroster_class(c, t.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
)
select (select o.id from students o where o.sourced_id = :owner::text) is not null as found,
       (select count(*) from matched) as total,
       p.record
from (select) one
left join lateral (
    select q.n, (select case when :picked::text[] is null then oneroster_class(c, t.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_class(c, t.sourced_id, :base::text, :school::text), :picked::text[]) end
                 from courses c left join terms t on t.id = c.term_id where c.id = q.id) as record
    from (select m.id,
                 row_number() over (
                     order by case when :descending::boolean then null else m.key end collate "C",
                              case when :descending::boolean then m.key end collate "C" desc,
                              case when :descending::boolean then null else m.id end,
                              case when :descending::boolean then m.id end desc) as n
          from matched m
          order by n
          limit :lim::bigint offset :off::bigint) q
) p on true
order by p.n;

-- name: term_classes
-- The courses of the term of sourcedId :owner, as classes (courses_term_id),
-- sorted as *_sorted; `found`: whether that term exists. No tombstones: a
-- deleted record belongs to nothing.
with matched as materialized (
    select c.id as id,
           case when :sort::text is not null
                then oneroster_class(c, t.sourced_id, :base::text, :school::text) #>> string_to_array(:sort::text, '.')
           end as key
    from courses c
        join terms t on t.id = c.term_id
    where c.term_id = (select o.id from terms o where o.sourced_id = :owner::text)
      and (cardinality(:fields::text[]) = 0
           or oneroster_match(oneroster_class(c, t.sourced_id, :base::text, :school::text)::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean))
)
select (select o.id from terms o where o.sourced_id = :owner::text) is not null as found,
       (select count(*) from matched) as total,
       p.record
from (select) one
left join lateral (
    select q.n, (select case when :picked::text[] is null then oneroster_class(c, t.sourced_id, :base::text, :school::text) else oneroster_pick(oneroster_class(c, t.sourced_id, :base::text, :school::text), :picked::text[]) end
                 from courses c left join terms t on t.id = c.term_id where c.id = q.id) as record
    from (select m.id,
                 row_number() over (
                     order by case when :descending::boolean then null else m.key end collate "C",
                              case when :descending::boolean then m.key end collate "C" desc,
                              case when :descending::boolean then null else m.id end,
                              case when :descending::boolean then m.id end desc) as n
          from matched m
          order by n
          limit :lim::bigint offset :off::bigint) q
) p on true
order by p.n;

-- name: orgs
-- The one org, the school of the settings (:school, :name, :modified_at), if
-- it passes the filter: a total of 1 or 0, and the record unless :off is
-- past it.
select o.matched::integer as total,
       case when o.matched and :off::bigint = 0
            then case when :picked::text[] is null then o.record
                      else oneroster_pick(o.record, :picked::text[]) end
       end as record
from (
    select r.record,
           cardinality(:fields::text[]) = 0
           or oneroster_match(r.record::jsonb, :fields::text[], :ops::text[], :vals::text[], :any_of::boolean)
           as matched
    from (select oneroster_org(:school::text, :name::text, :modified_at::timestamptz) as record) r
) o;

