-- wrk script for `python -m bench`: one scenario per run.
--
--   wrk -s bench/scenarios.lua URL -- SCENARIO STUDENTS COURSES SEED THREADS [DATA...]
--
-- SCENARIO is student-courses, enroll, course-students or healthz, with
-- random ids per request, drawn from 1..STUDENTS and 1..COURSES: each thread
-- seeds its own generator from SEED and its number, so threads (and runs
-- with another SEED) draw different ids. lookup asks GET /students?q= for
-- QUERY_LENGTH random letters of TAG_LETTERS in random letter case (see
-- bench/dataset.py: each matches about 18 of 1,100,000 students), a new
-- text every request; students-page asks GET /students?limit=50, the plain
-- page it is measured against. Two adversarial lookups, each text in random
-- letter case: lookup-common asks for text made of trigrams every email (or
-- every name) holds, in an order none does ("example@bench": each trigram
-- is in every row, the text in none); lookup-late for text only the
-- reserved students, the highest ids, contain ("reserved": 100,000
-- matches, all after the 1,000,000 others in id order). roster-users asks
-- the OneRoster provider for a page of 1,000 users at a random offset in
-- the first 100,000 students; students-page-500, GET /students?limit=500,
-- is the page it is measured against.
--
-- The other scenarios never repeat a request, on data bench/dataset.py
-- prepared for the run (DATA); with THREADS threads, thread k takes the
-- items k - 1, k - 1 + THREADS, k - 1 + 2 * THREADS, ... of the run's list,
-- so no two threads take the same one:
--   hot-course-empty, hot-course-prefilled COURSE FIRST_STUDENT STUDENTS:
--     POST /students/{id}/courses into COURSE, item i enrolling student
--     FIRST_STUDENT + i, for i below STUDENTS;
--   drop-promote FIRST_COURSE COURSES SEATS FIRST_STUDENT:
--     DELETE /students/{id}/courses/{id}, item j dropping the student of
--     rank r = floor(j / COURSES) from course i = j % COURSES (course
--     FIRST_COURSE + i seats students FIRST_STUDENT + i * SEATS + r, r below
--     SEATS): the courses take turns, so concurrent drops are on different
--     courses.
--   bulk, bulk-rules FIRST_COURSE COURSES FIRST_STUDENT STUDENTS ITEMS:
--     POST /enrollments/batch of ITEMS new enrollments, item r (a request)
--     enrolling students FIRST_STUDENT + (r * ITEMS + k) % STUDENTS, k below
--     ITEMS, into course FIRST_COURSE + r, for r below COURSES;
--   enroll-rules FIRST_COURSE SECTIONS PREFILLED FIRST_STUDENT STUDENTS NEW:
--     POST /students/{id}/courses into a course of a term with every rule
--     on, item i enrolling student FIRST_STUDENT + s, s = i % STUDENTS, into
--     FIRST_COURSE + slot * SECTIONS + s % SECTIONS, slot = PREFILLED +
--     floor(i / STUDENTS), for i below STUDENTS * NEW (bench/dataset.py's
--     RulesCourses: every one passes every rule).
-- Past the end of the list, a thread asks for a path that answers 404 and
-- done() prints how many times ("Past the prepared data: N"). wrk calls
-- request() once before the run to check the script, in thread 1, and
-- never sends what it returns: item 0 is skipped, never repeated.
--
-- rush FIRST_COURSE SECTIONS FIRST_STUDENT STUDENTS repeats requests on
-- purpose: POST /students/{id}/courses of a random one of STUDENTS students
-- into a random one of SECTIONS hot sections, half of them asking to wait;
-- and, one request in RUSH_DROP_EVERY, DELETE of an enrollment this thread
-- was answered 201 for (its Location), so seats free up and queues move all
-- run long.
--
-- The Authorization header comes from wrk's -H option.
--
-- With BENCH_WRK_STATUSES=1 in the environment (bench/wrk.py sets it for the
-- scenarios whose answers are counted), done() prints how many answers of
-- each status there were ("Answered 201: N"), the 4xx and 5xx ones by the
-- problem's type ("Answered 409 time-conflict: N"). Only then: a script
-- with a response() function makes wrk read every answer's headers and body
-- into Lua, a cost the other scenarios do not pay.

local threads = {}
local RUSH_DROP_EVERY = 5

-- bench/dataset.py's TAG_LETTERS and QUERY_LENGTH.
local TAG_LETTERS = "fgijkoqrvwyz"
local QUERY_LENGTH = 5
-- Texts of lookup-common and lookup-late (URL-encoded), one drawn per request.
local COMMON_TEXTS = {
  "example@bench", "bench@example", "example.bench", "xample@benc", "student%20student",
  "ench.bench",
}
local LATE_TEXTS = {"reserved", "eserve", "reserved%2010", "served%201"}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  scenario = args[1]
  students = tonumber(args[2])
  courses = tonumber(args[3])
  math.randomseed(tonumber(args[4]) + 7919 * thread_number)
  thread_count = tonumber(args[5])
  next_item = thread_number - 1
  past_end = 0
  if scenario == "hot-course-empty" or scenario == "hot-course-prefilled" then
    hot_course = tonumber(args[6])
    first_student = tonumber(args[7])
    items = tonumber(args[8])
  elseif scenario == "drop-promote" then
    first_course = tonumber(args[6])
    drop_courses = tonumber(args[7])
    seats = tonumber(args[8])
    first_student = tonumber(args[9])
    items = drop_courses * seats
  elseif scenario == "bulk" or scenario == "bulk-rules" then
    first_course = tonumber(args[6])
    items = tonumber(args[7])
    first_student = tonumber(args[8])
    bulk_students = tonumber(args[9])
    bulk_items = tonumber(args[10])
  elseif scenario == "enroll-rules" then
    first_course = tonumber(args[6])
    sections = tonumber(args[7])
    prefilled = tonumber(args[8])
    first_student = tonumber(args[9])
    rules_students = tonumber(args[10])
    items = rules_students * tonumber(args[11])
  elseif scenario == "rush" then
    first_course = tonumber(args[6])
    sections = tonumber(args[7])
    first_student = tonumber(args[8])
    rush_students = tonumber(args[9])
    -- The paths of the enrollments this thread was answered 201 for.
    enrolled = {}
  elseif scenario ~= "student-courses" and scenario ~= "enroll"
      and scenario ~= "course-students" and scenario ~= "healthz"
      and scenario ~= "lookup" and scenario ~= "students-page"
      and scenario ~= "lookup-common" and scenario ~= "lookup-late"
      and scenario ~= "roster-users" and scenario ~= "students-page-500" then
    error("unknown scenario: " .. tostring(scenario))
  end
  if scenario == "enroll" or hot_course or scenario == "bulk" or scenario == "bulk-rules"
      or scenario == "enroll-rules" or scenario == "rush" then
    wrk.headers["Content-Type"] = "application/json"
  end
end

if os.getenv("BENCH_WRK_STATUSES") == "1" then
  statuses = {}

  function response(status, headers, body)
    local key = tostring(status)
    if status >= 400 then
      local slug = body and body:match('"type":%s*"/problems/([%w%-]+)"')
      if slug then
        key = key .. " " .. slug
      end
    end
    statuses[key] = (statuses[key] or 0) + 1
    if status == 201 and enrolled then
      local location = headers["Location"]
      if location then
        table.insert(enrolled, location)
      end
    end
  end
end

-- This thread's next item of the run's list, or nil past its end.
local function take()
  local item = next_item
  next_item = next_item + thread_count
  if item >= items then
    past_end = past_end + 1
    return nil
  end
  return item
end

-- Text that matches few students' names and no email, in random letter case.
local function rare_text()
  local letters = {}
  for i = 1, QUERY_LENGTH do
    local k = math.random(1, #TAG_LETTERS)
    local letter = TAG_LETTERS:sub(k, k)
    if math.random(0, 1) == 1 then
      letter = letter:upper()
    end
    letters[i] = letter
  end
  return table.concat(letters)
end

-- One of `texts`, each letter in random letter case.
local function any_case(texts)
  local text = texts[math.random(1, #texts)]
  return (text:gsub("%a", function(letter)
    if math.random(0, 1) == 1 then
      return letter:upper()
    end
    return letter
  end))
end

local function past_the_end()
  return wrk.format("GET", "/bench/past-the-prepared-data")
end

function request()
  if scenario == "student-courses" then
    return wrk.format("GET", "/students/" .. math.random(1, students) .. "/courses?limit=50")
  elseif scenario == "enroll" then
    local body = '{"course_id": ' .. math.random(1, courses) .. '}'
    return wrk.format("POST", "/students/" .. math.random(1, students) .. "/courses", nil, body)
  elseif scenario == "course-students" then
    return wrk.format("GET", "/courses/" .. math.random(1, courses) .. "/students?limit=50")
  elseif scenario == "lookup" then
    return wrk.format("GET", "/students?q=" .. rare_text() .. "&limit=50")
  elseif scenario == "lookup-common" then
    return wrk.format("GET", "/students?q=" .. any_case(COMMON_TEXTS) .. "&limit=50")
  elseif scenario == "lookup-late" then
    return wrk.format("GET", "/students?q=" .. any_case(LATE_TEXTS) .. "&limit=50")
  elseif scenario == "students-page" then
    return wrk.format("GET", "/students?limit=50")
  elseif scenario == "students-page-500" then
    return wrk.format("GET", "/students?limit=500")
  elseif scenario == "roster-users" then
    -- A page of 1,000 anywhere in the first 100,000 students, as a client
    -- paging through a school of that size asks for them.
    local span = math.min(students, 100000) - 1000
    return wrk.format(
      "GET", "/ims/oneroster/rostering/v1p2/users?limit=1000&offset=" .. math.random(0, span))
  elseif hot_course then
    local i = take()
    if not i then
      return past_the_end()
    end
    local body = '{"course_id": ' .. hot_course .. '}'
    return wrk.format("POST", "/students/" .. (first_student + i) .. "/courses", nil, body)
  elseif scenario == "enroll-rules" then
    local i = take()
    if not i then
      return past_the_end()
    end
    local s = i % rules_students
    local slot = prefilled + math.floor(i / rules_students)
    local body = '{"course_id": ' .. (first_course + slot * sections + s % sections) .. '}'
    return wrk.format("POST", "/students/" .. (first_student + s) .. "/courses", nil, body)
  elseif scenario == "rush" then
    if #enrolled > 0 and math.random(1, RUSH_DROP_EVERY) == 1 then
      local k = math.random(1, #enrolled)
      local path = enrolled[k]
      enrolled[k] = enrolled[#enrolled]
      enrolled[#enrolled] = nil
      return wrk.format("DELETE", path)
    end
    local student = first_student + math.random(0, rush_students - 1)
    local course = first_course + math.random(0, sections - 1)
    local wait = math.random(0, 1) == 1 and "true" or "false"
    local body = '{"course_id": ' .. course .. ', "waitlist": ' .. wait .. '}'
    return wrk.format("POST", "/students/" .. student .. "/courses", nil, body)
  elseif scenario == "bulk" or scenario == "bulk-rules" then
    local r = take()
    if not r then
      return past_the_end()
    end
    local course = first_course + r
    local parts = {}
    for k = 0, bulk_items - 1 do
      local student = first_student + (r * bulk_items + k) % bulk_students
      parts[k + 1] = '{"student_id":' .. student .. ',"course_id":' .. course .. '}'
    end
    local body = '{"items":[' .. table.concat(parts, ",") .. ']}'
    return wrk.format("POST", "/enrollments/batch", nil, body)
  elseif scenario == "drop-promote" then
    local j = take()
    if not j then
      return past_the_end()
    end
    local i = j % drop_courses
    local rank = math.floor(j / drop_courses)
    local student = first_student + i * seats + rank
    return wrk.format("DELETE", "/students/" .. student .. "/courses/" .. (first_course + i))
  else
    return wrk.format("GET", "/healthz")
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("past_end") or 0)
  end
  if total > 0 then
    io.write("Past the prepared data: " .. total .. "\n")
  end
  if statuses then
    local answered = {}
    for _, thread in ipairs(threads) do
      for key, count in pairs(thread:get("statuses") or {}) do
        answered[key] = (answered[key] or 0) + count
      end
    end
    local keys = {}
    for key in pairs(answered) do
      table.insert(keys, key)
    end
    table.sort(keys)
    for _, key in ipairs(keys) do
      io.write("Answered " .. key .. ": " .. answered[key] .. "\n")
    end
  end
end
