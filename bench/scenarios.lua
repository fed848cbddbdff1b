-- wrk script for `python -m bench`: one scenario per run, random ids per request.
--
--   wrk -s bench/scenarios.lua URL -- SCENARIO STUDENTS COURSES SEED
--
-- SCENARIO is student-courses, enroll, course-students or healthz; ids are
-- drawn from 1..STUDENTS and 1..COURSES. Each thread seeds its own generator
-- from SEED and its number, so threads (and runs with another SEED) draw
-- different ids. The Authorization header comes from wrk's -H option.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  scenario = args[1]
  students = tonumber(args[2])
  courses = tonumber(args[3])
  math.randomseed(tonumber(args[4]) + 7919 * thread_number)
  if scenario == "enroll" then
    wrk.headers["Content-Type"] = "application/json"
  elseif scenario ~= "student-courses" and scenario ~= "course-students"
      and scenario ~= "healthz" then
    error("unknown scenario: " .. tostring(scenario))
  end
end

function request()
  if scenario == "student-courses" then
    return wrk.format("GET", "/students/" .. math.random(1, students) .. "/courses?limit=50")
  elseif scenario == "enroll" then
    local body = '{"course_id": ' .. math.random(1, courses) .. '}'
    return wrk.format("POST", "/students/" .. math.random(1, students) .. "/courses", nil, body)
  elseif scenario == "course-students" then
    return wrk.format("GET", "/courses/" .. math.random(1, courses) .. "/students?limit=50")
  else
    return wrk.format("GET", "/healthz")
  end
end
