/* tiny_corpus.c - the English text the tiny tokenizer learns its merges from (and
 * the tokenizer benchmark mixes into its input). Written for this project; the
 * content does not matter much, only that it looks like ordinary text, code and
 * numbers, and that it never changes: the tiny tokenizer's merges depend on every
 * byte of it. Kept as separate paragraphs so no literal gets too long for C. */
#include "mkmodel/tiny_corpus.h"

const char *const cl_tiny_corpus[] = {
    "The old lighthouse stood at the end of a narrow road that nobody repaired any more. "
    "Every evening the keeper climbed one hundred and twelve steps, wound the clock that "
    "turned the lamp, and wrote a short line in a book with a green cover. Most nights the "
    "line said the same thing: wind from the west, sea calm, no ships. On the night of the "
    "storm it said something else, and that is where this story begins.\n\n",

    "She had not expected visitors. When the knock came, she thought it was the shutters "
    "again, banging against the stone wall the way they did whenever the weather turned. "
    "But the knock came twice more, slow and patient, and when she opened the door there "
    "was a boy standing in the rain with a wooden box under his arm. \"I found this on the "
    "beach,\" he said. \"It has your name on it.\"\n\n",

    "It did. The letters were burned into the lid, a little crooked, as if someone had "
    "written them with a hot nail: MARGARET HALE, KEEPER. She turned the box over in her "
    "hands. It was lighter than it looked, and something inside it slid from one end to "
    "the other when she tilted it. \"Where exactly did you find it?\" she asked. \"Near the "
    "rocks below the north path. The tide was going out.\"\n\n",

    "They opened it together at the kitchen table, under the yellow light of the oil lamp. "
    "Inside there was a folded map, a brass key, and a photograph of the lighthouse taken "
    "from the sea, on a day so clear that you could count the windows. On the back of the "
    "photograph someone had written a date, the ninth of March, and a single question: "
    "Do you still keep the light?\n\n",

    "Margaret did not sleep that night. She sat by the window with the map spread across "
    "her knees and followed the pencil lines with her finger. They led from the harbour "
    "to a small island she had never visited, although she had looked at it every day for "
    "thirty years. People in the village said there was nothing there but birds, and that "
    "the currents around it were too strong for a rowing boat.\n\n",

    "In the morning the boy came back. His name was Tom, he said, and he lived with his "
    "aunt above the bakery. He had brought bread, still warm, and a bottle of milk. They ate "
    "standing up, looking at the map, and neither of them said what both of them were "
    "thinking. Finally Tom asked, \"Are we going?\" and Margaret laughed for the first time "
    "in weeks. \"We are going,\" she said, \"but not today. Today we prepare.\"\n\n",

    "Preparing took three days. They borrowed a boat from the fisherman who owed Margaret a "
    "favour, checked the oars, mended a sail, packed rope, water, candles, matches, two "
    "blankets and a tin of biscuits. Tom wanted to bring his dog, but the dog was afraid of "
    "the sea, so the dog stayed with the aunt. On the fourth day the wind dropped, the sky "
    "cleared, and they set out before the sun was up.\n\n",

    "How does a lighthouse work? The idea is simple. A strong lamp sits at the top of a "
    "tower, and a set of lenses gathers its light into a narrow beam. The lenses turn, so "
    "the beam sweeps across the water, and a sailor far away sees a flash every few "
    "seconds. Each lighthouse has its own pattern: two short flashes and a long pause, or "
    "three flashes every fifteen seconds. If you know the pattern, you know where you are.\n\n",

    "Modern lights run on electricity and need no keeper. A small computer switches the "
    "lamp on at dusk and off at dawn, reports faults over the radio, and keeps a log that "
    "nobody reads unless something goes wrong. It is efficient and reliable, and it is a "
    "little sad. A machine does not notice a boy on the beach with a box under his arm.\n\n",

    "Here is a tiny program that prints the flash pattern of a light, written in C:\n\n"
    "#include <stdio.h>\n\n"
    "int main(void)\n{\n"
    "    const int pattern[] = {1, 1, 0, 0, 1, 0, 0, 0};\n"
    "    for (int second = 0; second < 16; second++) {\n"
    "        int on = pattern[second % 8];\n"
    "        printf(\"%2d: %s\\n\", second, on ? \"flash\" : \"dark\");\n"
    "    }\n"
    "    return 0;\n}\n\n",

    "And the same idea in Python, with a function and a list:\n\n"
    "def flashes(pattern, seconds):\n"
    "    \"\"\"Return the state of the light for each second.\"\"\"\n"
    "    return [pattern[i % len(pattern)] for i in range(seconds)]\n\n"
    "if __name__ == \"__main__\":\n"
    "    for i, on in enumerate(flashes([1, 1, 0, 0], 12)):\n"
    "        print(i, \"flash\" if on else \"dark\")\n\n",

    "The crossing took four hours. The first hour was easy: the harbour was calm, the "
    "gulls followed them for a while, and Tom rowed with long steady strokes while Margaret "
    "steered. In the second hour the swell grew, and they had to turn the boat so that the "
    "waves came from the side of the bow. In the third hour Tom was sick twice and "
    "apologised both times. In the fourth hour they saw the island clearly for the first "
    "time, and it was not what either of them had imagined.\n\n",

    "There was a building on it. Not a ruin, but a small house with a slate roof and a "
    "chimney, and next to it a short tower, no taller than a tree, painted white with a red "
    "band. It was a lighthouse, a second one, so close to the first that from the mainland "
    "it must always have been hidden behind the rocks. \"Why would anyone build two?\" Tom "
    "asked. Margaret did not answer. She was looking at the door, and at the keyhole, and "
    "at the brass key in her hand.\n\n",

    "The key turned without a sound. Inside, everything was clean, as if someone had left "
    "that morning: a table, two chairs, a shelf of books, a kettle on a cold stove. On the "
    "table lay another green book, exactly like hers. She opened it at the last page and "
    "read the final line, written in a hand she knew very well, because it was her own "
    "mother's: wind from the west, sea calm, one ship, waiting for Margaret.\n\n",

    "Some numbers from the keeper's log, copied out for the harbour office: on 3 January "
    "the wind was 27 knots and the sea state 5; on 14 February, 9 knots and state 2; on 9 "
    "March, 41 knots, state 7, visibility under 200 metres. The lamp burned for 4,380 hours "
    "that year and used 1,095 litres of oil. The clock was wound 365 times, and it stopped "
    "once, at 02:17 on 22 October, for 11 minutes.\n\n",

    "A list of things to check every week: 1. Clean the lenses with a soft cloth. 2. Oil "
    "the gears of the turning mechanism. 3. Test the fog horn at noon on Sunday. 4. Count "
    "the spare wicks and order more when fewer than 20 remain. 5. Write the weather in the "
    "log at 06:00, 12:00, 18:00 and 24:00. 6. Walk around the tower and look for cracks. "
    "7. Answer the letters, even the strange ones.\n\n",

    "They stayed on the island until the evening. Margaret read the green book from the "
    "first page to the last, and Tom explored the rocks and found a cave full of old nets "
    "and a rusty anchor. When the light began to fade, Margaret climbed the short tower, "
    "found the lamp, filled it with oil from a can by the stairs, and lit it. The flame "
    "caught at once. The lenses began to turn, slowly, then faster, and a beam of light "
    "swept across the water toward the mainland.\n\n",

    "On the mainland, in the village, people came out of their houses and looked at the "
    "sea. Two lights were flashing where there had always been one. Some said it was a "
    "mistake, some said it was a ghost, and the fisherman who had lent the boat said "
    "nothing at all, because he had seen that second light once before, forty years ago, "
    "on the night Margaret was born.\n\n",

    "Questions for discussion: What would you have done with the box? Why do you think "
    "the second lighthouse was hidden? Is it better for a machine to keep the light, or a "
    "person? Write your answers in full sentences, and give at least one reason for each. "
    "There are no wrong answers, but there are lazy ones; try to avoid those.\n\n",

    "Configuration used by the simulation of the two lights (values in seconds unless "
    "noted): {\"north_light\": {\"period\": 15, \"flashes\": 3, \"range_km\": 33.5}, "
    "\"island_light\": {\"period\": 8, \"flashes\": 2, \"range_km\": 12.0}, \"seed\": 2024, "
    "\"steps\": 86400, \"log_every\": 600}. The results were written to results.csv with "
    "columns time, north_on, island_on, visible_from_harbour.\n\n",

    "Tom went home the next day and told his aunt everything, and his aunt told the baker, "
    "and by the end of the week the whole village knew. Margaret did not mind. She had "
    "decided to keep both lights, one on the tower and one on the island, and to row "
    "across once a month to wind the clock and refill the oil. It was more work than "
    "before, but she was not tired. For the first time in many years, she was curious.\n",
};

const size_t cl_tiny_corpus_count = sizeof cl_tiny_corpus / sizeof cl_tiny_corpus[0];
