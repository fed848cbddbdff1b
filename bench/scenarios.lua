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
-- matches, all after the 1,000,000 others in id order).
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
--   bulk FIRST_COURSE COURSES FIRST_STUDENT STUDENTS ITEMS:
--     POST /enrollments/batch of ITEMS new enrollments, item r (a request)
--     enrolling students FIRST_STUDENT + (r * ITEMS + k) % STUDENTS, k below
--     ITEMS, into course FIRST_COURSE + r, for r below COURSES.
-- Past the end of the list, a thread asks for a path that answers 404 and
-- done() prints how many times ("Past the prepared data: N"). wrk calls
-- request() once before the run to check the script, in thread 1, and
-- never sends what it returns: item 0 is skipped, never repeated.
--
-- The Authorization header comes from wrk's -H option.

local threads = {}

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
  elseif scenario == "bulk" then
    first_course = tonumber(args[6])
    items = tonumber(args[7])
    first_student = tonumber(args[8])
    bulk_students = tonumber(args[9])
    bulk_items = tonumber(args[10])
  elseif scenario ~= "student-courses" and scenario ~= "enroll"
      and scenario ~= "course-students" and scenario ~= "healthz"
      and scenario ~= "lookup" and scenario ~= "students-page"
      and scenario ~= "lookup-common" and scenario ~= "lookup-late" then
    error("unknown scenario: " .. tostring(scenario))
  end
  if scenario == "enroll" or hot_course or scenario == "bulk" then
    wrk.headers["Content-Type"] = "application/json"
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
  elseif hot_course then
    local i = take()
    if not i then
      return past_the_end()
    end
    local body = '{"course_id": ' .. hot_course .. '}'
    return wrk.format("POST", "/students/" .. (first_student + i) .. "/courses", nil, body)
  elseif scenario == "bulk" then
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
end
