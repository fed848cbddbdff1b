-- fold_case(): letter case the Unicode way, the same on every server
-- whatever its locale (lower() follows the locale, and the C locale folds A
-- to Z only). The unique indexes on emails and course codes (migration 0004)
-- and the trigram indexes (migration 0009) are on fold_case() of the column.
--
-- The simple case folding of every character: one character to one, so É
-- and é, ẞ and ß fold alike, ß and ss do not. The table below was printed by
-- tests/fold_case_table.py from Python's unicodedata (Unicode 14.0), and
-- tests/test_letter_case.py compares the function with Python for every code
-- point. The indexes hold what it returned when each row was written: a
-- change to what it returns leaves them stale until they are rebuilt (and
-- rows may then collide that did not).
--
-- Immutable (the table is fixed, no locale is consulted), so indexes may use
-- it. An SQL-standard body is parsed once, here: no search_path at call time
-- changes what it calls. Not STRICT, though null gives null all the same
-- (every function in the body is strict): PostgreSQL inlines a STRICT SQL
-- function only if its body is strict too, and a CASE is not. Inlined, the
-- indexes evaluate the body's builtins directly; called, the body is planned
-- again for every statement (on PostgreSQL 15 that made an insert of one
-- student ten times slower).
create or replace function fold_case(text) returns text
    language sql
    immutable
    parallel safe
    return case
        -- Only ASCII (as many bytes as characters in UTF8): A to Z are all
        -- that folds, and a 26-letter table is much faster to search.
        when pg_catalog.octet_length($1) = pg_catalog.char_length($1)
            then pg_catalog.translate($1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
        else pg_catalog.translate(
            $1,
            -- Every character whose simple case folding is another one
            -- (1454 of them), in code point order ...
               'ABCDEFGHIJKLMNOPQRSTUVWXYZ'         -- Latin, U+0041..U+005A
            || 'µ'                                  -- Micro Sign, U+00B5
            || 'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞĀĂ'   -- Latin, U+00C0..U+0102
            || 'ĄĆĈĊČĎĐĒĔĖĘĚĜĞĠĢĤĦĨĪĬĮĲĴĶĹĻĽĿŁŃŅ'   -- Latin, U+0104..U+0145
            || 'ŇŊŌŎŐŒŔŖŘŚŜŞŠŢŤŦŨŪŬŮŰŲŴŶŸŹŻŽſƁƂƄ'   -- Latin, U+0147..U+0184
            || 'ƆƇƉƊƋƎƏƐƑƓƔƖƗƘƜƝƟƠƢƤƦƧƩƬƮƯƱƲƳƵƷƸ'   -- Latin, U+0186..U+01B8
            || 'ƼǄǅǇǈǊǋǍǏǑǓǕǗǙǛǞǠǢǤǦǨǪǬǮǱǲǴǶǷǸǺǼ'   -- Latin, U+01BC..U+01FC
            || 'ǾȀȂȄȆȈȊȌȎȐȒȔȖȘȚȜȞȠȢȤȦȨȪȬȮȰȲȺȻȽȾɁ'   -- Latin, U+01FE..U+0241
            || 'ɃɄɅɆɈɊɌɎ'                           -- Latin, U+0243..U+024E
            || E'\u0345'                            -- Combining Greek Ypogegrammeni, U+0345
            || 'ͰͲͶͿΆΈΉΊΌΎΏΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦ'   -- Greek, U+0370..U+03A6
            || 'ΧΨΩΪΫςϏϐϑϕϖϘϚϜϞϠ'                   -- Greek, U+03A7..U+03E0
            || 'ϢϤϦϨϪϬϮ'                            -- Coptic, U+03E2..U+03EE
            || 'ϰϱϴϵϷϹϺϽϾϿ'                         -- Greek, U+03F0..U+03FF
            || 'ЀЁЂЃЄЅІЇЈЉЊЋЌЍЎЏАБВГДЕЖЗИЙКЛМНОП'   -- Cyrillic, U+0400..U+041F
            || 'РСТУФХЦЧШЩЪЫЬЭЮЯѠѢѤѦѨѪѬѮѰѲѴѶѸѺѼѾ'   -- Cyrillic, U+0420..U+047E
            || 'ҀҊҌҎҐҒҔҖҘҚҜҞҠҢҤҦҨҪҬҮҰҲҴҶҸҺҼҾӀӁӃӅ'   -- Cyrillic, U+0480..U+04C5
            || 'ӇӉӋӍӐӒӔӖӘӚӜӞӠӢӤӦӨӪӬӮӰӲӴӶӸӺӼӾԀԂԄԆ'   -- Cyrillic, U+04C7..U+0506
            || 'ԈԊԌԎԐԒԔԖԘԚԜԞԠԢԤԦԨԪԬԮ'               -- Cyrillic, U+0508..U+052E
            || 'ԱԲԳԴԵԶԷԸԹԺԻԼԽԾԿՀՁՂՃՄՅՆՇՈՉՊՋՌՍՎՏՐ'   -- Armenian, U+0531..U+0550
            || 'ՑՒՓՔՕՖ'                             -- Armenian, U+0551..U+0556
            || 'ႠႡႢႣႤႥႦႧႨႩႪႫႬႭႮႯႰႱႲႳႴႵႶႷႸႹႺႻႼႽႾႿ'   -- Georgian, U+10A0..U+10BF
            || 'ჀჁჂჃჄჅჇჍ'                           -- Georgian, U+10C0..U+10CD
            || 'ᏸᏹᏺᏻᏼᏽ'                             -- Cherokee, U+13F8..U+13FD
            || 'ᲀᲁᲂᲃᲄᲅᲆᲇᲈ'                          -- Cyrillic, U+1C80..U+1C88
            || 'ᲐᲑᲒᲓᲔᲕᲖᲗᲘᲙᲚᲛᲜᲝᲞᲟᲠᲡᲢᲣᲤᲥᲦᲧᲨᲩᲪᲫᲬᲭᲮᲯ'   -- Georgian, U+1C90..U+1CAF
            || 'ᲰᲱᲲᲳᲴᲵᲶᲷᲸᲹᲺᲽᲾᲿ'                     -- Georgian, U+1CB0..U+1CBF
            || 'ḀḂḄḆḈḊḌḎḐḒḔḖḘḚḜḞḠḢḤḦḨḪḬḮḰḲḴḶḸḺḼḾ'   -- Latin, U+1E00..U+1E3E
            || 'ṀṂṄṆṈṊṌṎṐṒṔṖṘṚṜṞṠṢṤṦṨṪṬṮṰṲṴṶṸṺṼṾ'   -- Latin, U+1E40..U+1E7E
            || 'ẀẂẄẆẈẊẌẎẐẒẔẛẞẠẢẤẦẨẪẬẮẰẲẴẶẸẺẼẾỀỂỄ'   -- Latin, U+1E80..U+1EC4
            || 'ỆỈỊỌỎỐỒỔỖỘỚỜỞỠỢỤỦỨỪỬỮỰỲỴỶỸỺỼỾ'      -- Latin, U+1EC6..U+1EFE
            || 'ἈἉἊἋἌἍἎἏἘἙἚἛἜἝἨἩἪἫἬἭἮἯἸἹἺἻἼἽἾἿὈὉ'   -- Greek, U+1F08..U+1F49
            || 'ὊὋὌὍὙὛὝὟὨὩὪὫὬὭὮὯᾈᾉᾊᾋᾌᾍᾎᾏᾘᾙᾚᾛᾜᾝᾞᾟ'   -- Greek, U+1F4A..U+1F9F
            || 'ᾨᾩᾪᾫᾬᾭᾮᾯᾸᾹᾺΆᾼιῈΈῊΉῌῘῙῚΊῨῩῪΎῬῸΌῺΏ'   -- Greek, U+1FA8..U+1FFB
            || 'ῼ'                                  -- Greek Capital Letter Omega With Prosgegrammeni, U+1FFC
            || 'Ω'                                  -- Ohm Sign, U+2126
            || 'K'                                  -- Kelvin Sign, U+212A
            || 'Å'                                  -- Angstrom Sign, U+212B
            || 'Ⅎ'                                  -- Turned Capital F, U+2132
            || 'ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫⅬⅭⅮⅯↃ'                  -- Roman Numeral, U+2160..U+2183
            || 'ⒶⒷⒸⒹⒺⒻⒼⒽⒾⒿⓀⓁⓂⓃⓄⓅⓆⓇⓈⓉⓊⓋⓌⓍⓎⓏ'         -- Circled Latin, U+24B6..U+24CF
            || 'ⰀⰁⰂⰃⰄⰅⰆⰇⰈⰉⰊⰋⰌⰍⰎⰏⰐⰑⰒⰓⰔⰕⰖⰗⰘⰙⰚⰛⰜⰝⰞⰟ'   -- Glagolitic, U+2C00..U+2C1F
            || 'ⰠⰡⰢⰣⰤⰥⰦⰧⰨⰩⰪⰫⰬⰭⰮⰯ'                   -- Glagolitic, U+2C20..U+2C2F
            || 'ⱠⱢⱣⱤⱧⱩⱫⱭⱮⱯⱰⱲⱵⱾⱿ'                    -- Latin, U+2C60..U+2C7F
            || 'ⲀⲂⲄⲆⲈⲊⲌⲎⲐⲒⲔⲖⲘⲚⲜⲞⲠⲢⲤⲦⲨⲪⲬⲮⲰⲲⲴⲶⲸⲺⲼⲾ'   -- Coptic, U+2C80..U+2CBE
            || 'ⳀⳂⳄⳆⳈⳊⳌⳎⳐⳒⳔⳖⳘⳚⳜⳞⳠⳢⳫⳭⳲ'              -- Coptic, U+2CC0..U+2CF2
            || 'ꙀꙂꙄꙆꙈꙊꙌꙎꙐꙒꙔꙖꙘꙚꙜꙞꙠꙢꙤꙦꙨꙪꙬꚀꚂꚄꚆꚈꚊꚌꚎꚐ'   -- Cyrillic, U+A640..U+A690
            || 'ꚒꚔꚖꚘꚚ'                              -- Cyrillic, U+A692..U+A69A
            || 'ꜢꜤꜦꜨꜪꜬꜮꜲꜴꜶꜸꜺꜼꜾꝀꝂꝄꝆꝈꝊꝌꝎꝐꝒꝔꝖꝘꝚꝜꝞꝠꝢ'   -- Latin, U+A722..U+A762
            || 'ꝤꝦꝨꝪꝬꝮꝹꝻꝽꝾꞀꞂꞄꞆꞋꞍꞐꞒꞖꞘꞚꞜꞞꞠꞢꞤꞦꞨꞪꞫꞬꞭ'   -- Latin, U+A764..U+A7AD
            || 'ꞮꞰꞱꞲꞳꞴꞶꞸꞺꞼꞾꟀꟂꟄꟅꟆꟇꟉꟐꟖꟘꟵ'             -- Latin, U+A7AE..U+A7F5
            || 'ꭰꭱꭲꭳꭴꭵꭶꭷꭸꭹꭺꭻꭼꭽꭾꭿꮀꮁꮂꮃꮄꮅꮆꮇꮈꮉꮊꮋꮌꮍꮎꮏ'   -- Cherokee, U+AB70..U+AB8F
            || 'ꮐꮑꮒꮓꮔꮕꮖꮗꮘꮙꮚꮛꮜꮝꮞꮟꮠꮡꮢꮣꮤꮥꮦꮧꮨꮩꮪꮫꮬꮭꮮꮯ'   -- Cherokee, U+AB90..U+ABAF
            || 'ꮰꮱꮲꮳꮴꮵꮶꮷꮸꮹꮺꮻꮼꮽꮾꮿ'                   -- Cherokee, U+ABB0..U+ABBF
            || 'ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ'         -- Fullwidth Latin, U+FF21..U+FF3A
            || '𐐀𐐁𐐂𐐃𐐄𐐅𐐆𐐇𐐈𐐉𐐊𐐋𐐌𐐍𐐎𐐏𐐐𐐑𐐒𐐓𐐔𐐕𐐖𐐗𐐘𐐙𐐚𐐛𐐜𐐝𐐞𐐟'   -- Deseret, U+10400..U+1041F
            || '𐐠𐐡𐐢𐐣𐐤𐐥𐐦𐐧'                           -- Deseret, U+10420..U+10427
            || '𐒰𐒱𐒲𐒳𐒴𐒵𐒶𐒷𐒸𐒹𐒺𐒻𐒼𐒽𐒾𐒿𐓀𐓁𐓂𐓃𐓄𐓅𐓆𐓇𐓈𐓉𐓊𐓋𐓌𐓍𐓎𐓏'   -- Osage, U+104B0..U+104CF
            || '𐓐𐓑𐓒𐓓'                               -- Osage, U+104D0..U+104D3
            || '𐕰𐕱𐕲𐕳𐕴𐕵𐕶𐕷𐕸𐕹𐕺𐕼𐕽𐕾𐕿𐖀𐖁𐖂𐖃𐖄𐖅𐖆𐖇𐖈𐖉𐖊𐖌𐖍𐖎𐖏𐖐𐖑'   -- Vithkuqi, U+10570..U+10591
            || '𐖒𐖔𐖕'                                -- Vithkuqi, U+10592..U+10595
            || E'\U00010C80\U00010C81\U00010C82\U00010C83\U00010C84\U00010C85\U00010C86\U00010C87'  -- Old Hungarian, U+10C80..U+10C87
            || E'\U00010C88\U00010C89\U00010C8A\U00010C8B\U00010C8C\U00010C8D\U00010C8E\U00010C8F'  -- Old Hungarian, U+10C88..U+10C8F
            || E'\U00010C90\U00010C91\U00010C92\U00010C93\U00010C94\U00010C95\U00010C96\U00010C97'  -- Old Hungarian, U+10C90..U+10C97
            || E'\U00010C98\U00010C99\U00010C9A\U00010C9B\U00010C9C\U00010C9D\U00010C9E\U00010C9F'  -- Old Hungarian, U+10C98..U+10C9F
            || E'\U00010CA0\U00010CA1\U00010CA2\U00010CA3\U00010CA4\U00010CA5\U00010CA6\U00010CA7'  -- Old Hungarian, U+10CA0..U+10CA7
            || E'\U00010CA8\U00010CA9\U00010CAA\U00010CAB\U00010CAC\U00010CAD\U00010CAE\U00010CAF'  -- Old Hungarian, U+10CA8..U+10CAF
            || E'\U00010CB0\U00010CB1\U00010CB2'    -- Old Hungarian, U+10CB0..U+10CB2
            || '𑢠𑢡𑢢𑢣𑢤𑢥𑢦𑢧𑢨𑢩𑢪𑢫𑢬𑢭𑢮𑢯𑢰𑢱𑢲𑢳𑢴𑢵𑢶𑢷𑢸𑢹𑢺𑢻𑢼𑢽𑢾𑢿'   -- Warang Citi, U+118A0..U+118BF
            || '𖹀𖹁𖹂𖹃𖹄𖹅𖹆𖹇𖹈𖹉𖹊𖹋𖹌𖹍𖹎𖹏𖹐𖹑𖹒𖹓𖹔𖹕𖹖𖹗𖹘𖹙𖹚𖹛𖹜𖹝𖹞𖹟'   -- Medefaidrin, U+16E40..U+16E5F
            || E'\U0001E900\U0001E901\U0001E902\U0001E903\U0001E904\U0001E905\U0001E906\U0001E907'  -- Adlam, U+1E900..U+1E907
            || E'\U0001E908\U0001E909\U0001E90A\U0001E90B\U0001E90C\U0001E90D\U0001E90E\U0001E90F'  -- Adlam, U+1E908..U+1E90F
            || E'\U0001E910\U0001E911\U0001E912\U0001E913\U0001E914\U0001E915\U0001E916\U0001E917'  -- Adlam, U+1E910..U+1E917
            || E'\U0001E918\U0001E919\U0001E91A\U0001E91B\U0001E91C\U0001E91D\U0001E91E\U0001E91F'  -- Adlam, U+1E918..U+1E91F
            || E'\U0001E920\U0001E921',             -- Adlam, U+1E920..U+1E921
            -- ... and what each folds to, line for line in the same order
            -- (the comments name the characters folded).
               'abcdefghijklmnopqrstuvwxyz'         -- Latin, U+0041..U+005A
            || 'μ'                                  -- Micro Sign, U+00B5
            || 'àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþāă'   -- Latin, U+00C0..U+0102
            || 'ąćĉċčďđēĕėęěĝğġģĥħĩīĭįĳĵķĺļľŀłńņ'   -- Latin, U+0104..U+0145
            || 'ňŋōŏőœŕŗřśŝşšţťŧũūŭůűųŵŷÿźżžsɓƃƅ'   -- Latin, U+0147..U+0184
            || 'ɔƈɖɗƌǝəɛƒɠɣɩɨƙɯɲɵơƣƥʀƨʃƭʈưʊʋƴƶʒƹ'   -- Latin, U+0186..U+01B8
            || 'ƽǆǆǉǉǌǌǎǐǒǔǖǘǚǜǟǡǣǥǧǩǫǭǯǳǳǵƕƿǹǻǽ'   -- Latin, U+01BC..U+01FC
            || 'ǿȁȃȅȇȉȋȍȏȑȓȕȗșțȝȟƞȣȥȧȩȫȭȯȱȳⱥȼƚⱦɂ'   -- Latin, U+01FE..U+0241
            || 'ƀʉʌɇɉɋɍɏ'                           -- Latin, U+0243..U+024E
            || 'ι'                                  -- Combining Greek Ypogegrammeni, U+0345
            || 'ͱͳͷϳάέήίόύώαβγδεζηθικλμνξοπρστυφ'   -- Greek, U+0370..U+03A6
            || 'χψωϊϋσϗβθφπϙϛϝϟϡ'                   -- Greek, U+03A7..U+03E0
            || 'ϣϥϧϩϫϭϯ'                            -- Coptic, U+03E2..U+03EE
            || 'κρθεϸϲϻͻͼͽ'                         -- Greek, U+03F0..U+03FF
            || 'ѐёђѓєѕіїјљњћќѝўџабвгдежзийклмноп'   -- Cyrillic, U+0400..U+041F
            || 'рстуфхцчшщъыьэюяѡѣѥѧѩѫѭѯѱѳѵѷѹѻѽѿ'   -- Cyrillic, U+0420..U+047E
            || 'ҁҋҍҏґғҕҗҙқҝҟҡңҥҧҩҫҭүұҳҵҷҹһҽҿӏӂӄӆ'   -- Cyrillic, U+0480..U+04C5
            || 'ӈӊӌӎӑӓӕӗәӛӝӟӡӣӥӧөӫӭӯӱӳӵӷӹӻӽӿԁԃԅԇ'   -- Cyrillic, U+04C7..U+0506
            || 'ԉԋԍԏԑԓԕԗԙԛԝԟԡԣԥԧԩԫԭԯ'               -- Cyrillic, U+0508..U+052E
            || 'աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտր'   -- Armenian, U+0531..U+0550
            || 'ցւփքօֆ'                             -- Armenian, U+0551..U+0556
            || 'ⴀⴁⴂⴃⴄⴅⴆⴇⴈⴉⴊⴋⴌⴍⴎⴏⴐⴑⴒⴓⴔⴕⴖⴗⴘⴙⴚⴛⴜⴝⴞⴟ'   -- Georgian, U+10A0..U+10BF
            || 'ⴠⴡⴢⴣⴤⴥⴧⴭ'                           -- Georgian, U+10C0..U+10CD
            || 'ᏰᏱᏲᏳᏴᏵ'                             -- Cherokee, U+13F8..U+13FD
            || 'вдосттъѣꙋ'                          -- Cyrillic, U+1C80..U+1C88
            || 'აბგდევზთიკლმნოპჟრსტუფქღყშჩცძწჭხჯ'   -- Georgian, U+1C90..U+1CAF
            || 'ჰჱჲჳჴჵჶჷჸჹჺჽჾჿ'                     -- Georgian, U+1CB0..U+1CBF
            || 'ḁḃḅḇḉḋḍḏḑḓḕḗḙḛḝḟḡḣḥḧḩḫḭḯḱḳḵḷḹḻḽḿ'   -- Latin, U+1E00..U+1E3E
            || 'ṁṃṅṇṉṋṍṏṑṓṕṗṙṛṝṟṡṣṥṧṩṫṭṯṱṳṵṷṹṻṽṿ'   -- Latin, U+1E40..U+1E7E
            || 'ẁẃẅẇẉẋẍẏẑẓẕṡßạảấầẩẫậắằẳẵặẹẻẽếềểễ'   -- Latin, U+1E80..U+1EC4
            || 'ệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹỻỽỿ'      -- Latin, U+1EC6..U+1EFE
            || 'ἀἁἂἃἄἅἆἇἐἑἒἓἔἕἠἡἢἣἤἥἦἧἰἱἲἳἴἵἶἷὀὁ'   -- Greek, U+1F08..U+1F49
            || 'ὂὃὄὅὑὓὕὗὠὡὢὣὤὥὦὧᾀᾁᾂᾃᾄᾅᾆᾇᾐᾑᾒᾓᾔᾕᾖᾗ'   -- Greek, U+1F4A..U+1F9F
            || 'ᾠᾡᾢᾣᾤᾥᾦᾧᾰᾱὰάᾳιὲέὴήῃῐῑὶίῠῡὺύῥὸόὼώ'   -- Greek, U+1FA8..U+1FFB
            || 'ῳ'                                  -- Greek Capital Letter Omega With Prosgegrammeni, U+1FFC
            || 'ω'                                  -- Ohm Sign, U+2126
            || 'k'                                  -- Kelvin Sign, U+212A
            || 'å'                                  -- Angstrom Sign, U+212B
            || 'ⅎ'                                  -- Turned Capital F, U+2132
            || 'ⅰⅱⅲⅳⅴⅵⅶⅷⅸⅹⅺⅻⅼⅽⅾⅿↄ'                  -- Roman Numeral, U+2160..U+2183
            || 'ⓐⓑⓒⓓⓔⓕⓖⓗⓘⓙⓚⓛⓜⓝⓞⓟⓠⓡⓢⓣⓤⓥⓦⓧⓨⓩ'         -- Circled Latin, U+24B6..U+24CF
            || 'ⰰⰱⰲⰳⰴⰵⰶⰷⰸⰹⰺⰻⰼⰽⰾⰿⱀⱁⱂⱃⱄⱅⱆⱇⱈⱉⱊⱋⱌⱍⱎⱏ'   -- Glagolitic, U+2C00..U+2C1F
            || 'ⱐⱑⱒⱓⱔⱕⱖⱗⱘⱙⱚⱛⱜⱝⱞⱟ'                   -- Glagolitic, U+2C20..U+2C2F
            || 'ⱡɫᵽɽⱨⱪⱬɑɱɐɒⱳⱶȿɀ'                    -- Latin, U+2C60..U+2C7F
            || 'ⲁⲃⲅⲇⲉⲋⲍⲏⲑⲓⲕⲗⲙⲛⲝⲟⲡⲣⲥⲧⲩⲫⲭⲯⲱⲳⲵⲷⲹⲻⲽⲿ'   -- Coptic, U+2C80..U+2CBE
            || 'ⳁⳃⳅⳇⳉⳋⳍⳏⳑⳓⳕⳗⳙⳛⳝⳟⳡⳣⳬⳮⳳ'              -- Coptic, U+2CC0..U+2CF2
            || 'ꙁꙃꙅꙇꙉꙋꙍꙏꙑꙓꙕꙗꙙꙛꙝꙟꙡꙣꙥꙧꙩꙫꙭꚁꚃꚅꚇꚉꚋꚍꚏꚑ'   -- Cyrillic, U+A640..U+A690
            || 'ꚓꚕꚗꚙꚛ'                              -- Cyrillic, U+A692..U+A69A
            || 'ꜣꜥꜧꜩꜫꜭꜯꜳꜵꜷꜹꜻꜽꜿꝁꝃꝅꝇꝉꝋꝍꝏꝑꝓꝕꝗꝙꝛꝝꝟꝡꝣ'   -- Latin, U+A722..U+A762
            || 'ꝥꝧꝩꝫꝭꝯꝺꝼᵹꝿꞁꞃꞅꞇꞌɥꞑꞓꞗꞙꞛꞝꞟꞡꞣꞥꞧꞩɦɜɡɬ'   -- Latin, U+A764..U+A7AD
            || 'ɪʞʇʝꭓꞵꞷꞹꞻꞽꞿꟁꟃꞔʂᶎꟈꟊꟑꟗꟙꟶ'             -- Latin, U+A7AE..U+A7F5
            || 'ᎠᎡᎢᎣᎤᎥᎦᎧᎨᎩᎪᎫᎬᎭᎮᎯᎰᎱᎲᎳᎴᎵᎶᎷᎸᎹᎺᎻᎼᎽᎾᎿ'   -- Cherokee, U+AB70..U+AB8F
            || 'ᏀᏁᏂᏃᏄᏅᏆᏇᏈᏉᏊᏋᏌᏍᏎᏏᏐᏑᏒᏓᏔᏕᏖᏗᏘᏙᏚᏛᏜᏝᏞᏟ'   -- Cherokee, U+AB90..U+ABAF
            || 'ᏠᏡᏢᏣᏤᏥᏦᏧᏨᏩᏪᏫᏬᏭᏮᏯ'                   -- Cherokee, U+ABB0..U+ABBF
            || 'ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ'         -- Fullwidth Latin, U+FF21..U+FF3A
            || '𐐨𐐩𐐪𐐫𐐬𐐭𐐮𐐯𐐰𐐱𐐲𐐳𐐴𐐵𐐶𐐷𐐸𐐹𐐺𐐻𐐼𐐽𐐾𐐿𐑀𐑁𐑂𐑃𐑄𐑅𐑆𐑇'   -- Deseret, U+10400..U+1041F
            || '𐑈𐑉𐑊𐑋𐑌𐑍𐑎𐑏'                           -- Deseret, U+10420..U+10427
            || '𐓘𐓙𐓚𐓛𐓜𐓝𐓞𐓟𐓠𐓡𐓢𐓣𐓤𐓥𐓦𐓧𐓨𐓩𐓪𐓫𐓬𐓭𐓮𐓯𐓰𐓱𐓲𐓳𐓴𐓵𐓶𐓷'   -- Osage, U+104B0..U+104CF
            || '𐓸𐓹𐓺𐓻'                               -- Osage, U+104D0..U+104D3
            || '𐖗𐖘𐖙𐖚𐖛𐖜𐖝𐖞𐖟𐖠𐖡𐖣𐖤𐖥𐖦𐖧𐖨𐖩𐖪𐖫𐖬𐖭𐖮𐖯𐖰𐖱𐖳𐖴𐖵𐖶𐖷𐖸'   -- Vithkuqi, U+10570..U+10591
            || '𐖹𐖻𐖼'                                -- Vithkuqi, U+10592..U+10595
            || E'\U00010CC0\U00010CC1\U00010CC2\U00010CC3\U00010CC4\U00010CC5\U00010CC6\U00010CC7'  -- Old Hungarian, U+10C80..U+10C87
            || E'\U00010CC8\U00010CC9\U00010CCA\U00010CCB\U00010CCC\U00010CCD\U00010CCE\U00010CCF'  -- Old Hungarian, U+10C88..U+10C8F
            || E'\U00010CD0\U00010CD1\U00010CD2\U00010CD3\U00010CD4\U00010CD5\U00010CD6\U00010CD7'  -- Old Hungarian, U+10C90..U+10C97
            || E'\U00010CD8\U00010CD9\U00010CDA\U00010CDB\U00010CDC\U00010CDD\U00010CDE\U00010CDF'  -- Old Hungarian, U+10C98..U+10C9F
            || E'\U00010CE0\U00010CE1\U00010CE2\U00010CE3\U00010CE4\U00010CE5\U00010CE6\U00010CE7'  -- Old Hungarian, U+10CA0..U+10CA7
            || E'\U00010CE8\U00010CE9\U00010CEA\U00010CEB\U00010CEC\U00010CED\U00010CEE\U00010CEF'  -- Old Hungarian, U+10CA8..U+10CAF
            || E'\U00010CF0\U00010CF1\U00010CF2'    -- Old Hungarian, U+10CB0..U+10CB2
            || '𑣀𑣁𑣂𑣃𑣄𑣅𑣆𑣇𑣈𑣉𑣊𑣋𑣌𑣍𑣎𑣏𑣐𑣑𑣒𑣓𑣔𑣕𑣖𑣗𑣘𑣙𑣚𑣛𑣜𑣝𑣞𑣟'   -- Warang Citi, U+118A0..U+118BF
            || '𖹠𖹡𖹢𖹣𖹤𖹥𖹦𖹧𖹨𖹩𖹪𖹫𖹬𖹭𖹮𖹯𖹰𖹱𖹲𖹳𖹴𖹵𖹶𖹷𖹸𖹹𖹺𖹻𖹼𖹽𖹾𖹿'   -- Medefaidrin, U+16E40..U+16E5F
            || E'\U0001E922\U0001E923\U0001E924\U0001E925\U0001E926\U0001E927\U0001E928\U0001E929'  -- Adlam, U+1E900..U+1E907
            || E'\U0001E92A\U0001E92B\U0001E92C\U0001E92D\U0001E92E\U0001E92F\U0001E930\U0001E931'  -- Adlam, U+1E908..U+1E90F
            || E'\U0001E932\U0001E933\U0001E934\U0001E935\U0001E936\U0001E937\U0001E938\U0001E939'  -- Adlam, U+1E910..U+1E917
            || E'\U0001E93A\U0001E93B\U0001E93C\U0001E93D\U0001E93E\U0001E93F\U0001E940\U0001E941'  -- Adlam, U+1E918..U+1E91F
            || E'\U0001E942\U0001E943'              -- Adlam, U+1E920..U+1E921
        )
    end;
