"""The demo medical insurance catalogue (医保目录) and the clinical reference data around it.

The catalogue maps a national-code-shaped item code to its entry: name, kind, catalogue class
(甲 A / 乙 B / 丙 C / self-pay), unit and unit price in fen, the quantity limits and the
sex, age and department restrictions that the smart-audit rules (智能审核) read. It is
reference data, identical for every seed; the demo generator only ever bills within it.

Code shapes (every code matches ``verifier.invoice.CATALOGUE_CODE``):

- western drugs ``X`` and Chinese patent medicines ``Z`` (23 characters): ``X`` + ATC level-4
  class (5) + generic-name code (letter + 3 digits) + dosage-form code (letter + 3 digits) +
  specification/manufacturer (9 digits), e.g. ``XJ01CAB001A002…``, like the national 医保药品
  分类与代码;
- Chinese herbal pieces (中药饮片) ``T`` + 9 digits;
- medical services ``F`` + the 15-digit national service code (``00`` + the 9-digit code of the
  2012 全国医疗服务价格项目规范 + 4 digits of sub-item), e.g. ``F001102000010000``;
- medical consumables (医用耗材) ``C`` + 19 digits (category, generic name, specification).

Limits: ``max_daily_milli`` is the most one patient may be charged on one calendar day of an
inpatient stay; ``max_outpatient_milli`` the most on one outpatient invoice (for a drug: the
maximum daily dose times the dispensing cap of 7 days, 30 days for a long prescription (长处方)
of a chronic-disease drug, 14 doses for herbal pieces; 3 packs of a packaged drug).
Restrictions: ``sex`` ("F"/"M"), ``min_age`` (inclusive) and ``max_age`` (exclusive) in whole
years on the day of service, ``departments`` (None: any department).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from verifier.invoice import CATALOGUE_CODE, ItemClass


class ItemKind(enum.StrEnum):
    WESTERN_DRUG = "western_drug"  # 西药
    PATENT_MEDICINE = "patent_medicine"  # 中成药
    HERBAL = "herbal"  # 中药饮片
    CONSULTATION = "consultation"  # 诊查费
    BED = "bed"  # 床位费
    NURSING = "nursing"  # 护理费 and basic care (injections, infusion, monitoring)
    EXAMINATION = "examination"  # 检查: imaging, ultrasound, functional tests
    LAB_TEST = "lab_test"  # 化验
    TREATMENT = "treatment"  # 治疗
    SURGERY = "surgery"  # 手术 and anaesthesia
    MATERIAL = "material"  # 卫生材料

    @property
    def is_drug(self) -> bool:
        return self in (ItemKind.WESTERN_DRUG, ItemKind.PATENT_MEDICINE, ItemKind.HERBAL)


DEPARTMENTS: Mapping[str, str] = MappingProxyType(
    {
        "N": "内科",
        "B": "神经内科",
        "S": "外科",
        "O": "骨科",
        "G": "妇产科",
        "P": "儿科",
        "E": "眼科",
        "L": "耳鼻咽喉科",
        "K": "口腔科",
        "D": "皮肤科",
        "T": "中医科",
        "R": "康复医学科",
        "J": "急诊科",
        "Q": "全科医学科",
    }
)


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    """One catalogue entry; see the module docstring for the code shapes and the limits."""

    code: str
    name: str
    kind: ItemKind
    item_class: ItemClass
    unit: str
    unit_price: int  # fen per unit
    usual_daily_milli: int  # a usual day's quantity (dose a day for a drug, grams a dose for herbs)
    max_daily_milli: int
    max_outpatient_milli: int
    departments: frozenset[str] | None  # Chinese department names; None: any
    sex: str | None  # "F" or "M"
    min_age: int | None  # inclusive
    max_age: int | None  # exclusive
    inpatient_only: bool
    outpatient_only: bool
    injection: bool  # given by injection or infusion
    long_prescription: bool  # chronic-disease drug, up to 30 days a prescription
    high_cost: bool  # a big-ticket item (surgery, implant, CT/MRI, costly drug)

    def allows(self, sex: str, age: int) -> bool:
        """Whether a patient of this sex and age may be billed the item."""
        return (
            (self.sex is None or self.sex == sex)
            and (self.min_age is None or age >= self.min_age)
            and (self.max_age is None or age < self.max_age)
        )


# Sections: "## kind prefix". Rows: class|name|unit|price fen|catalogue class|usual a day|
# max a day|departments (letters of DEPARTMENTS, * for any)|flags. Flags: F/M sex, C child
# (age < 14), A adult (18+), I inpatient only, V outpatient only, J injection, L long
# prescription, P packaged (dispensed by the pack), X high cost. Services give their 9-digit code
# as class, consumables a 6-digit category, drugs an ATC level-4 class, herbs nothing.
_TABLE = """
## consultation F
110200001|普通门诊诊查费|次|1000|A|1|1|*|V
110200002|副主任医师门诊诊查费|次|2500|A|1|1|*|V
110200003|主任医师门诊诊查费|次|3500|B|1|1|*|V
110200004|急诊诊查费|次|1500|A|1|1|J|V
110200005|中医辨证论治费|次|1500|A|1|1|T|V
110300001|住院诊查费|日|2000|A|1|1|*|I
## bed F
110900001|普通病房床位费(三人间)|日|4200|A|1|1|*|I
110900001|普通病房床位费(双人间)|日|6000|B|1|1|*|I
110900001|普通病房床位费(单人间)|日|12000|self|1|1|*|I
110900003|监护病房床位费|日|15000|A|1|1|NBSOJ|IX
110900005|急诊留观床位费|日|2000|A|1|1|J|V
## nursing F
120100003|Ⅰ级护理|日|2800|A|1|1|*|I
120100004|Ⅱ级护理|日|1800|A|1|1|*|I
120100005|Ⅲ级护理|日|1000|A|1|1|*|I
120100013|口腔护理|次|500|A|2|3|*|I
120100014|会阴护理|次|500|A|1|2|GS|I
120100010|压疮护理|次|800|A|2|3|*|IA
120200002|中换药|次|2000|A|1|2|SOGJ|
120200003|小换药|次|1200|A|1|2|SOGJDK|
120300001|吸痰护理|次|800|A|2|6|NBJ|I
120400001|肌肉注射|次|500|A|1|4|*|
120400002|静脉注射|次|700|A|1|4|*|
120400003|皮下注射|次|500|A|1|4|*|
120400006|静脉输液|组|1200|A|1|6|*|
120400007|小儿头皮静脉输液|组|1500|A|1|4|P|C
120400011|静脉留置针置管|次|1000|A|1|1|*|
120500001|静脉采血|次|300|A|1|3|*|
120600001|氧气吸入|小时|300|A|8|24|*|
120800001|雾化吸入|次|1000|A|2|4|NPLJB|
120900001|导尿|次|1200|A|1|2|SGBJO|I
121100001|灌肠|次|1500|A|1|2|SGN|I
121200001|心电监测|小时|300|A|24|24|*|I
121200002|血氧饱和度监测|小时|100|A|24|24|*|I
121300001|末梢血糖测定|次|500|A|4|8|*|
## examination F
210102015|数字化X线摄影(DR)胸部正位|部位|6000|A|1|2|*|
210102016|数字化X线摄影(DR)四肢|部位|5500|A|1|3|OSJRP|
210102017|数字化X线摄影(DR)腰椎|部位|6500|A|1|2|ORS|
210102030|口腔曲面体层摄影|次|8000|A|1|1|K|
210300001|X线计算机体层(CT)平扫(头颅)|部位|18000|B|1|1|BNJSP|X
210300002|X线计算机体层(CT)平扫(胸部)|部位|20000|B|1|1|NSJ|X
210300003|X线计算机体层(CT)平扫(腹部)|部位|24000|B|1|1|NSJ|X
210300004|X线计算机体层(CT)增强扫描|部位|48000|B|1|1|NSB|XA
210400001|磁共振(MRI)平扫(头颅)|部位|48000|B|1|1|BN|X
210400002|磁共振(MRI)平扫(腰椎)|部位|48000|B|1|1|OR|X
210400003|磁共振(MRI)平扫(膝关节)|部位|48000|B|1|1|OR|X
210500001|双能X线骨密度测定|次|13000|B|1|1|ONG|A
220201001|彩色多普勒超声常规检查(腹部)|次|12000|A|1|1|NSJ|
220201002|彩色多普勒超声常规检查(甲状腺)|次|9000|A|1|1|NS|
220201003|彩色多普勒超声常规检查(泌尿系)|次|9000|A|1|1|NS|
220201004|经阴道彩色多普勒超声检查(妇科)|次|12000|A|1|1|G|FA
220201005|产科彩色多普勒超声(胎儿系统)|次|18000|A|1|1|G|FA
220201006|彩色多普勒超声检查(颈动脉)|次|12000|A|1|1|BN|A
220201007|彩色多普勒超声检查(四肢血管)|次|15000|B|1|1|SO|
220302001|超声心动图|次|22000|A|1|1|NBP|
310701001|常规心电图检查(十二通道)|次|2500|A|1|2|*|
310701008|动态心电图(Holter)|次|15000|B|1|1|N|
310100001|常规脑电图|次|8000|A|1|1|BP|
310300007|视力检查|次|500|A|1|1|E|
310300009|裂隙灯检查|次|800|A|1|1|E|
310300020|眼压测量|次|900|A|1|1|E|
310300029|眼底检查|次|1200|A|1|1|E|
310300089|光学相干断层成像(OCT)|次|15000|B|1|1|E|
310401001|纯音测听|次|3500|A|1|1|L|
310402001|鼻内镜检查|次|12000|B|1|1|L|
310403001|电子喉镜检查|次|15000|B|1|1|L|
310603001|肺功能检查|次|15000|B|1|1|N|
310903001|电子胃镜检查|次|30000|B|1|1|NS|AX
310903002|电子结肠镜检查|次|40000|B|1|1|NS|AX
311201001|胎心监护|次|4000|A|1|2|G|FA
## lab_test F
250101015|血细胞分析(五分类)|项|2500|A|1|2|*|
250101016|C反应蛋白测定(CRP)|项|1500|A|1|2|*|
250101017|红细胞沉降率测定|项|600|A|1|1|*|
250102035|尿液分析(尿常规)|项|1200|A|1|1|*|
250103001|粪便常规|项|1000|A|1|1|*|
250103002|粪便隐血试验|项|1000|A|1|1|*|
250301001|血清总蛋白测定|项|300|A|1|1|*|
250301002|血清白蛋白测定|项|300|A|1|1|*|
250305001|丙氨酸氨基转移酶测定|项|400|A|1|1|*|
250305002|天门冬氨酸氨基转移酶测定|项|400|A|1|1|*|
250305003|γ-谷氨酰基转移酶测定|项|400|A|1|1|*|
250305004|碱性磷酸酶测定|项|400|A|1|1|*|
250307001|血清总胆红素测定|项|400|A|1|1|*|
250307002|血清直接胆红素测定|项|400|A|1|1|*|
250307005|血清总胆汁酸测定|项|800|A|1|1|*|
250307021|尿素测定|项|400|A|1|1|*|
250307022|肌酐测定|项|400|A|1|1|*|
250307023|尿酸测定|项|400|A|1|1|*|
250307024|胱抑素C测定|项|2000|B|1|1|*|
250302001|葡萄糖测定|项|400|A|1|1|*|
250302003|糖化血红蛋白测定|项|5000|A|1|1|*|
250303001|血清总胆固醇测定|项|400|A|1|1|*|
250303002|血清甘油三酯测定|项|400|A|1|1|*|
250303004|高密度脂蛋白胆固醇测定|项|500|A|1|1|*|
250303005|低密度脂蛋白胆固醇测定|项|500|A|1|1|*|
250304001|钾测定|项|300|A|1|1|*|
250304002|钠测定|项|300|A|1|1|*|
250304003|氯测定|项|300|A|1|1|*|
250304004|钙测定|项|300|A|1|1|*|
250203001|凝血酶原时间测定(PT)|项|700|A|1|1|*|
250203002|活化部分凝血活酶时间测定(APTT)|项|700|A|1|1|*|
250203003|纤维蛋白原测定|项|800|A|1|1|*|
250203004|D-二聚体测定|项|3000|A|1|1|*|
250310001|肌钙蛋白I测定|项|6000|B|1|2|NJB|
250310002|肌酸激酶同工酶测定|项|2000|A|1|2|NJB|
250310003|N端脑钠肽前体测定|项|12000|B|1|1|NJ|
250401001|乙型肝炎表面抗原测定|项|1000|A|1|1|*|
250401002|乙型肝炎表面抗体测定|项|1000|A|1|1|*|
250401003|乙型肝炎e抗原测定|项|1000|A|1|1|*|
250401004|乙型肝炎e抗体测定|项|1000|A|1|1|*|
250401005|乙型肝炎核心抗体测定|项|1000|A|1|1|*|
250402001|丙型肝炎抗体测定|项|2500|A|1|1|*|
250402002|梅毒螺旋体特异抗体测定|项|2000|A|1|1|*|
250402003|人免疫缺陷病毒抗体测定|项|3000|A|1|1|*|
250403001|降钙素原测定|项|12000|B|1|1|NPJ|
250403002|血型鉴定(ABO+Rh)|项|1500|A|1|1|*|
250404001|游离三碘甲状原氨酸测定|项|1800|A|1|1|*|
250404002|游离甲状腺素测定|项|1800|A|1|1|*|
250404003|促甲状腺激素测定|项|2000|A|1|1|*|
250405001|癌胚抗原测定|项|3000|A|1|1|*|A
250405002|甲胎蛋白测定|项|3000|A|1|1|*|A
250405003|前列腺特异性抗原测定|项|4000|A|1|1|NS|MA
250405004|糖类抗原125测定|项|4500|A|1|1|GN|FA
250406001|人绒毛膜促性腺激素测定|项|3500|A|1|1|GJ|F
250406002|尿妊娠试验|项|500|A|1|1|GJ|F
250501001|甲型/乙型流感病毒抗原检测|项|4000|B|1|1|NPJ|
250501002|血培养及鉴定|项|8000|A|1|2|NPJ|I
250501003|真菌镜检|项|1000|A|1|1|D|
250501004|阴道分泌物检查|项|1200|A|1|1|G|F
250501005|动脉血气分析|项|6000|A|1|2|NJB|
270300001|组织病理学检查与诊断|例|25000|A|1|1|SGOL|I
270300002|宫颈液基细胞学检查(TCT)|例|12000|B|1|1|G|FA
## treatment F
430000001|普通针刺|次|2000|A|1|1|TR|
430000002|电针|次|2500|A|1|1|TR|
430000003|艾灸|次|2000|A|1|1|TR|
430000004|拔罐|次|1000|A|1|1|TR|
430000005|推拿治疗|次|3000|A|1|1|TRO|
430000006|中药熏洗治疗|次|2500|B|1|1|TRO|
430000007|小儿推拿|次|2500|A|1|1|TP|C
340200001|运动疗法|次|5000|A|1|1|ROB|
340200002|作业疗法|次|3000|A|1|1|RB|
340100001|中频脉冲电治疗|次|1500|A|1|2|RO|
340100002|红外线治疗|次|1000|A|1|2|ROT|
340100003|超短波治疗|次|1500|A|1|2|RO|
311400001|关节腔穿刺注射|次|3500|A|1|1|O|A
311400002|石膏固定术(前臂)|次|12000|A|1|1|OJ|
311400003|小夹板固定术|次|6000|A|1|1|OJ|
311500001|清创缝合术(小)|次|8000|A|1|1|SJO|
311500002|体表肿物切除术|次|20000|A|1|1|SD|
310511001|龋齿充填术(复合树脂)|牙|8000|C|1|4|K|
310511002|根管治疗术(单根管)|根管|15000|B|1|3|K|
310511003|牙周洁治术(全口)|次|12000|self|1|1|K|A
310511004|恒牙拔除术(简单)|牙|4000|A|1|2|K|
310511005|阻生牙拔除术|牙|15000|A|1|1|K|A
310300101|结膜囊冲洗|次|800|A|1|2|E|
310300102|泪道冲洗|次|1200|A|1|2|E|
310401101|外耳道冲洗|次|1000|A|1|1|L|
310401102|鼻腔冲洗|次|800|A|1|2|L|
311000001|液氮冷冻治疗|次|3000|B|1|1|D|
311000002|红光治疗|次|2000|C|1|1|D|
480000001|中药代煎|帖|300|A|1|1|T|
## surgery F
330100001|局部浸润麻醉|次|3000|A|1|1|SOGELKD|
330100003|全身麻醉|次|80000|A|1|1|SOGEL|IX
330100005|椎管内麻醉|次|50000|A|1|1|SOG|IX
330100015|麻醉中监测|小时|2000|A|2|8|SOGEL|I
331003001|阑尾切除术(腹腔镜)|次|160000|A|1|1|S|IX
331005002|腹腔镜胆囊切除术|次|200000|A|1|1|S|IXA
331008005|腹股沟疝修补术|次|150000|A|1|1|S|IX
331010001|混合痔切除术|次|80000|A|1|1|S|IXA
331104001|经尿道前列腺电切术|次|250000|A|1|1|S|IXMA
330703001|甲状腺部分切除术|次|200000|A|1|1|S|IXA
331501001|单胎顺产接生|次|80000|A|1|1|G|IXF
331501002|子宫下段剖宫产术|次|160000|A|1|1|G|IXF
331502001|腹腔镜子宫肌瘤剔除术|次|220000|A|1|1|G|IXFA
331503001|诊断性刮宫术|次|30000|A|1|1|G|IFA
331601001|人工髋关节置换术|次|480000|A|1|1|O|IXA
331602001|桡骨骨折切开复位内固定术|次|250000|A|1|1|O|IX
331603001|腰椎间盘突出摘除术|次|320000|A|1|1|O|IXA
331604001|膝关节镜检查清理术|次|180000|B|1|1|O|IXA
330604001|白内障超声乳化摘除+人工晶体植入术|次|180000|A|1|1|E|IXA
330604002|翼状胬肉切除术|次|40000|A|1|1|E|IX
330605001|扁桃体切除术|次|60000|A|1|1|L|IX
330605002|鼻内镜下鼻窦开放术|次|150000|A|1|1|L|IXA
## material C
030101|一次性使用无菌注射器(5ml)|支|60|B|2|10|*|
030102|一次性使用输液器(带针)|套|250|B|1|4|*|
030103|一次性使用静脉留置针|支|1200|B|1|2|*|
030104|一次性使用真空采血管|支|60|B|3|10|*|
030105|一次性使用采血针|支|40|B|1|4|*|
020201|医用无菌纱布|块|150|B|2|10|*|
020202|透明敷贴|贴|600|B|1|3|*|
020203|医用棉签|包|80|C|1|4|*|
030201|一次性使用导尿包|包|2800|B|1|2|*|I
030202|一次性使用吸氧管|根|500|B|1|1|*|I
030203|一次性使用雾化器|个|1800|B|1|1|*|
030204|心电电极片|片|80|B|5|10|*|I
030205|一次性使用胃管|根|1500|B|1|1|*|I
030206|一次性使用引流袋|个|600|B|1|3|SGO|I
030207|负压引流器|套|15000|B|1|1|SO|I
040101|可吸收缝合线|根|9500|B|2|6|SGOEL|I
040102|腹腔镜穿刺器|个|48000|B|3|4|SG|IX
040103|一次性使用腔镜切割吻合器|把|280000|C|1|2|S|IX
040104|疝修补补片|片|320000|C|1|1|S|IX
040201|人工髋关节假体(陶瓷-聚乙烯)|套|2800000|B|1|1|O|IXA
040202|锁定接骨板|块|650000|B|1|2|O|IX
040203|锁定螺钉|枚|45000|B|6|12|O|IX
040301|人工晶体(非球面折叠)|片|380000|B|1|1|E|IXA
040302|眼科粘弹剂|支|45000|B|1|2|E|I
050101|弹力绷带|卷|1200|B|1|3|OSR|
050102|高分子石膏绷带|卷|8500|B|2|4|OJ|
050103|医用胶片|张|1500|B|1|4|*|
050104|一次性使用检查手套|副|60|C|2|10|*|
050105|一次性使用产包|包|8000|B|1|1|G|IF
050106|根管充填材料|支|3500|C|1|3|K|
050107|一次性使用手术衣包|包|3500|C|1|2|SGOEL|I
## western_drug X
J01CA04|阿莫西林胶囊(0.25g)|粒|32|A|3|6|NPSLKJ|
J01CR02|阿莫西林克拉维酸钾片(0.375g)|片|185|B|3|6|NPLJ|
J01DC02|头孢呋辛酯片(0.25g)|片|260|B|2|4|NPLSJ|
J01DD04|注射用头孢曲松钠(1g)|支|520|A|2|4|NPSGOLJ|J
J01DC02|注射用头孢呋辛钠(0.75g)|支|450|A|3|6|NSGOJEL|J
J01DD01|注射用头孢噻肟钠(1g)|支|380|A|2|4|NPS|J
J01DH51|注射用亚胺培南西司他丁钠(0.5g)|支|9850|B|3|4|NSJ|JIX
J01FA10|阿奇霉素片(0.25g)|片|145|A|2|2|NPL|
J01FA10|注射用阿奇霉素(0.5g)|支|1680|B|1|1|NPJ|J
J01MA12|左氧氟沙星片(0.5g)|片|210|A|1|1|NSLG|A
J01MA12|左氧氟沙星氯化钠注射液(0.5g:100ml)|瓶|1580|A|1|1|NSJ|JA
J01XD01|甲硝唑氯化钠注射液(0.5g:100ml)|瓶|320|A|2|3|SG|J
J01XD01|甲硝唑片(0.2g)|片|8|A|3|6|GKS|
J01EE01|复方磺胺甲噁唑片|片|12|A|2|4|N|
J01CE01|注射用青霉素钠(80万U)|支|65|A|4|8|NPSJ|J
J01AA02|多西环素片(0.1g)|片|45|A|2|2|DN|A
J01FF01|克林霉素磷酸酯注射液(0.3g)|支|420|B|2|4|SK|J
J05AH02|磷酸奥司他韦胶囊(75mg)|粒|560|B|2|2|NJ|A
J05AH02|磷酸奥司他韦颗粒(15mg)|袋|420|B|2|4|P|C
J05AB01|阿昔洛韦片(0.2g)|片|18|A|5|5|DN|
J05AB11|盐酸伐昔洛韦片(0.3g)|片|210|B|2|2|D|A
N02BE01|对乙酰氨基酚片(0.5g)|片|6|A|3|4|NSOLKJDT|A
N02BE01|对乙酰氨基酚混悬滴剂(15ml)|瓶|1560|A|1|1|P|CP
M01AE01|布洛芬缓释胶囊(0.3g)|粒|38|A|2|2|NSOLKJ|
M01AE01|布洛芬混悬液(100ml)|瓶|1850|A|1|1|P|CP
M01AH01|塞来昔布胶囊(0.2g)|粒|320|B|2|2|ORS|AL
M01AB05|双氯芬酸钠缓释片(75mg)|片|95|A|1|2|ORS|A
M02AA15|双氯芬酸二乙胺乳胶剂(20g)|支|1650|B|1|1|OR|P
N02AX02|盐酸曲马多缓释片(0.1g)|片|185|B|2|4|SO|A
M01AH04|注射用帕瑞昔布钠(40mg)|支|3850|B|2|2|SOG|JAI
N01BB02|盐酸利多卡因注射液(0.1g:5ml)|支|85|A|2|4|SKODLEG|J
C08CA01|苯磺酸氨氯地平片(5mg)|片|52|A|1|2|NB|AL
C09CA01|氯沙坦钾片(50mg)|片|115|A|1|2|NB|AL
C09AA02|马来酸依那普利片(10mg)|片|42|A|1|2|N|AL
C07AB02|酒石酸美托洛尔片(25mg)|片|16|A|2|4|N|AL
C07AB02|琥珀酸美托洛尔缓释片(47.5mg)|片|180|A|1|2|N|AL
C03AA03|氢氯噻嗪片(25mg)|片|5|A|1|2|N|AL
C10AA05|阿托伐他汀钙片(20mg)|片|120|A|1|2|NB|AL
C10AA07|瑞舒伐他汀钙片(10mg)|片|95|A|1|1|NB|AL
B01AC06|阿司匹林肠溶片(100mg)|片|15|A|1|1|NB|AL
B01AC04|硫酸氢氯吡格雷片(75mg)|片|310|A|1|1|NB|AL
C01DA14|单硝酸异山梨酯缓释片(40mg)|片|85|A|1|2|N|AL
C01DA02|硝酸甘油片(0.5mg)|片|12|A|3|6|NJ|A
B01AB05|依诺肝素钠注射液(0.4ml:4000AxaIU)|支|2650|B|2|2|NSOB|JAI
B01AB01|肝素钠注射液(12500U)|支|1200|A|1|2|NJ|JI
C01CA24|盐酸肾上腺素注射液(1mg)|支|180|A|2|10|J|J
C01CA03|重酒石酸去甲肾上腺素注射液(2mg)|支|520|A|4|10|J|JI
A10BA02|盐酸二甲双胍片(0.5g)|片|9|A|3|4|N|AL
A10BA02|盐酸二甲双胍缓释片(0.5g)|片|28|A|2|4|N|AL
A10BB12|格列美脲片(2mg)|片|65|A|1|3|N|AL
A10BF01|阿卡波糖片(50mg)|片|110|A|3|6|N|AL
A10BH01|磷酸西格列汀片(100mg)|片|420|B|1|1|N|AL
A10AB05|门冬胰岛素注射液(3ml:300U)|支|5200|A|1|1|N|JLP
A10AE04|甘精胰岛素注射液(3ml:300U)|支|7800|B|1|1|N|ALP
A10AB01|胰岛素注射液(10ml:400U)|支|2150|A|1|1|NJ|JI
A02BC01|奥美拉唑肠溶胶囊(20mg)|粒|38|A|2|2|NS|
A02BC05|艾司奥美拉唑镁肠溶片(20mg)|片|280|B|2|2|N|A
A02BC02|注射用泮托拉唑钠(40mg)|支|1260|B|2|2|NSJ|J
A02BC01|注射用奥美拉唑钠(40mg)|支|880|B|2|2|NSJO|J
A02AD02|铝碳酸镁咀嚼片(0.5g)|片|32|A|6|9|N|
A03FA03|多潘立酮片(10mg)|片|22|A|3|3|N|
A03FA01|盐酸甲氧氯普胺注射液(10mg)|支|45|A|2|3|NSJ|J
A07BC05|蒙脱石散(3g)|袋|120|A|3|3|NP|
A07FA02|枯草杆菌二联活菌颗粒(1g)|袋|185|B|3|3|P|C
A07FA01|双歧杆菌三联活菌胶囊(210mg)|粒|75|B|6|6|NP|
A06AD11|乳果糖口服溶液(15ml)|袋|260|A|2|3|NS|
A05AA02|熊去氧胆酸胶囊(0.25g)|粒|320|B|3|4|NS|A
A03BB01|消旋山莨菪碱注射液(10mg)|支|55|A|1|2|NSJ|J
R05CB01|乙酰半胱氨酸颗粒(0.2g)|袋|95|B|3|3|NPL|
R05CB06|盐酸氨溴索片(30mg)|片|28|A|3|3|NL|
R05CB06|盐酸氨溴索注射液(15mg)|支|310|B|2|4|NPJ|J
R05DA09|氢溴酸右美沙芬片(15mg)|片|20|A|3|4|N|
R03AC02|硫酸沙丁胺醇吸入气雾剂(100μg×200揿)|支|2450|A|1|1|NP|LP
R03AK06|沙美特罗替卡松粉吸入剂(50/250μg)|盒|16800|B|1|1|N|ALP
R03BA02|吸入用布地奈德混悬液(1mg:2ml)|支|560|B|2|4|NPL|
R03BB01|吸入用异丙托溴铵溶液(500μg:2ml)|支|420|B|3|4|NP|
R03DA05|氨茶碱注射液(0.25g)|支|38|A|1|2|NJ|J
R06AE07|盐酸西替利嗪片(10mg)|片|45|A|1|1|NLD|
R06AX13|氯雷他定片(10mg)|片|36|A|1|1|NLD|
R06AX13|氯雷他定糖浆(60ml)|瓶|1380|A|1|1|P|CP
R01AD09|糠酸莫米松鼻喷雾剂(50μg×140揿)|支|6300|B|1|1|L|P
N05CD08|艾司唑仑片(1mg)|片|12|A|1|2|NBT|A
N06AB10|草酸艾司西酞普兰片(10mg)|片|380|B|1|2|B|AL
N03AX14|左乙拉西坦片(0.5g)|片|560|B|2|2|B|L
N07CA03|盐酸氟桂利嗪胶囊(5mg)|粒|25|A|1|2|BN|A
N04BA02|多巴丝肼片(250mg)|片|185|A|3|4|B|AL
N06BX03|吡拉西坦片(0.4g)|片|18|B|3|3|B|A
B05BC01|甘露醇注射液(250ml:50g)|瓶|450|A|3|4|BJS|J
N07XX|丁苯酞氯化钠注射液(100ml:25mg)|瓶|13800|B|2|2|B|JAIX
H02AB02|地塞米松磷酸钠注射液(5mg)|支|32|A|2|2|NSOLJPDKG|J
H02AB04|注射用甲泼尼龙琥珀酸钠(40mg)|支|1350|B|2|2|NBJ|J
H02AB06|醋酸泼尼松片(5mg)|片|6|A|6|12|NDB|
B05BB01|氯化钠注射液(100ml:0.9g)|瓶|330|A|2|4|*|J
B05BB01|氯化钠注射液(250ml:2.25g)|袋|380|A|2|4|*|J
B05BA03|葡萄糖注射液(250ml:12.5g)|袋|420|A|1|3|*|J
B05BB02|葡萄糖氯化钠注射液(500ml)|袋|480|A|1|3|NSGOJ|J
B05XA01|氯化钾注射液(10ml:1.5g)|支|45|A|2|4|NSJ|J
B05BB01|乳酸钠林格注射液(500ml)|袋|620|A|1|3|SGJO|J
B05AA01|人血白蛋白(10g)|瓶|39800|B|1|2|NS|JIX
B03AA07|硫酸亚铁缓释片(0.45g)|片|24|A|1|2|NG|
B03BA05|甲钴胺片(0.5mg)|片|55|A|3|3|BNO|
A11DA01|维生素B1片(10mg)|片|3|A|3|3|NB|
B02AA02|氨甲环酸注射液(0.5g)|支|280|A|2|4|SGO|J
H01BB02|缩宫素注射液(10U)|支|250|A|2|4|G|JF
G03DA04|黄体酮胶囊(100mg)|粒|420|B|2|2|G|F
G03DA04|黄体酮注射液(20mg)|支|160|A|1|2|G|JF
G01AF02|克霉唑阴道片(0.5g)|片|1350|A|1|1|G|F
G01AF01|甲硝唑阴道泡腾片(0.2g)|片|120|A|1|1|G|F
A12AX|碳酸钙D3片(600mg)|片|78|C|1|2|GO|A
G04CA02|盐酸坦索罗辛缓释胶囊(0.2mg)|粒|420|B|1|1|NS|MAL
G04CB01|非那雄胺片(5mg)|片|310|B|1|1|S|MAL
S01AE05|左氧氟沙星滴眼液(5ml:24.4mg)|支|1680|A|1|1|E|P
S01CA01|妥布霉素地塞米松滴眼液(5ml)|支|3250|B|1|1|E|P
S01EE01|拉坦前列素滴眼液(2.5ml)|支|9800|B|1|1|E|ALP
S01XA20|玻璃酸钠滴眼液(0.1%:5ml)|支|2450|B|1|1|E|P
S01FA06|复方托吡卡胺滴眼液(5ml)|支|1650|A|1|1|E|P
D07AC13|糠酸莫米松乳膏(10g)|支|2150|B|1|1|DP|P
D01AC02|硝酸咪康唑乳膏(20g)|支|1080|A|1|1|D|P
D06AX09|莫匹罗星软膏(5g)|支|1760|B|1|1|DSP|P
D10AD03|阿达帕林凝胶(30g)|支|3580|C|1|1|D|P
D04AX|炉甘石洗剂(100ml)|瓶|520|A|1|1|DP|P
A01AB03|复方氯己定含漱液(200ml)|瓶|880|A|1|1|KL|P
R05XA|小儿氨酚黄那敏颗粒|袋|45|A|3|3|P|C
A11CC05|维生素D滴剂(400IU)|粒|85|self|1|1|P|C
M05BA04|阿仑膦酸钠片(70mg)|片|980|B|1|1|ON|AL
M03BX09|盐酸乙哌立松片(50mg)|片|120|B|3|3|OR|A
N01AX10|丙泊酚注射液(20ml:0.2g)|支|3500|A|2|3|SGOEL|JI
N01AH01|枸橼酸芬太尼注射液(0.1mg)|支|650|A|2|4|SGOEL|JI
N01BB09|盐酸罗哌卡因注射液(75mg)|支|2850|B|1|2|SGO|JI
M03AC09|罗库溴铵注射液(50mg)|支|3950|B|1|2|SGOEL|JI
A04AA01|盐酸昂丹司琼注射液(8mg)|支|620|B|1|2|SGOEL|J
## patent_medicine Z
A01AA|连花清瘟胶囊(0.35g)|粒|65|A|12|12|NJT|A
A01AA|感冒清热颗粒(12g)|袋|160|A|2|2|NT|
A01AB|小儿豉翘清热颗粒(2g)|袋|280|B|3|3|P|C
A04CA|小儿肺热咳喘口服液(10ml)|支|230|B|3|3|P|C
A04CB|蒲地蓝消炎口服液(10ml)|支|310|B|3|3|NPL|
A04CB|蓝芩口服液(10ml)|支|280|B|3|3|NLP|
A12BA|复方丹参滴丸(27mg)|丸|9|A|30|30|NT|AL
A12BA|银杏叶片(19.2mg)|片|45|B|3|3|NBT|AL
A12BB|丹参酮ⅡA磺酸钠注射液(10mg)|支|1150|B|4|4|NB|JAI
A12BB|注射用血栓通(冻干)(150mg)|支|2650|B|2|2|NBT|JA
A12BC|血塞通软胶囊(60mg)|粒|95|B|4|4|BT|AL
A12BC|脑心通胶囊(0.4g)|粒|135|B|9|9|BT|AL
A12BD|复方血栓通胶囊|粒|88|B|9|9|ET|AL
A16AA|六味地黄丸(浓缩丸)|丸|15|A|24|24|T|L
A06AB|逍遥丸(浓缩丸)|丸|8|A|24|24|TG|
A01AC|藿香正气口服液(10ml)|支|220|A|4|4|NT|
A06AC|香砂养胃丸(浓缩丸)|丸|6|A|24|24|T|
A06AC|胃苏颗粒(5g)|袋|180|B|3|3|NT|
A16BA|复方阿胶浆(20ml)|支|650|C|3|3|TG|A
A12CA|云南白药气雾剂(85g+60g)|盒|4850|A|1|1|OSR|P
A12CA|伤湿止痛膏|贴|42|A|2|2|ORT|
A12CB|活血止痛胶囊(0.5g)|粒|68|A|9|9|ORT|A
A16CA|仙灵骨葆胶囊(0.5g)|粒|98|B|6|6|OT|AL
A12CB|独一味胶囊(0.3g)|粒|110|B|9|9|OS|A
A16AB|金水宝胶囊(0.33g)|粒|92|B|9|9|NT|L
A12DA|益母草颗粒(15g)|袋|150|A|3|3|G|FA
A04DA|妇科千金片|片|48|A|12|12|G|FA
A04DA|宫炎平片|片|32|B|9|9|G|FA
A12DB|桂枝茯苓胶囊(0.31g)|粒|65|A|9|9|G|FA
A10BA|普乐安片|片|35|B|12|12|S|MAL
A06DA|小儿七星茶颗粒(7g)|袋|120|B|3|3|P|C
A06DA|健儿消食口服液(10ml)|支|160|B|3|3|P|C
A04EA|黄氏响声丸|丸|5|B|24|24|L|A
A04EB|鼻炎康片|片|48|B|12|12|L|A
A04FA|珍珠明目滴眼液(8ml)|支|1250|B|1|1|E|P
A04CB|疏风解毒胶囊(0.52g)|粒|115|B|12|12|NTL|A
A16AC|参麦注射液(50ml)|支|1980|B|2|2|NT|JAI
A15AA|醒脑静注射液(10ml)|支|1650|B|2|2|BJ|JAI
A16AC|生脉饮口服液(10ml)|支|120|B|3|3|NT|
A16AB|百令胶囊(0.5g)|粒|185|B|9|9|NT|L
A12CB|舒筋活血片|片|28|B|15|15|OR|A
## herbal T
|黄芪|g|12|A|15|30|T|
|当归|g|28|A|10|15|T|
|党参|g|30|A|12|30|T|
|麸炒白术|g|18|A|10|15|T|
|茯苓|g|15|A|15|30|T|
|炙甘草|g|10|A|6|10|T|
|陈皮|g|8|A|9|12|T|
|法半夏|g|35|A|9|12|T|
|川芎|g|20|A|9|12|T|
|白芍|g|15|A|12|15|T|
|熟地黄|g|16|A|15|30|T|
|生地黄|g|14|A|12|20|T|
|北柴胡|g|40|A|9|12|T|
|黄芩|g|18|A|9|12|T|
|连翘|g|25|A|10|15|T|
|金银花|g|60|A|12|20|T|
|桔梗|g|18|A|6|10|T|
|炒苦杏仁|g|22|A|9|10|T|
|麦冬|g|45|A|12|15|T|
|醋五味子|g|55|A|6|9|T|
|丹参|g|14|A|15|30|T|
|红花|g|90|A|6|9|T|
|燀桃仁|g|40|A|9|10|T|
|枸杞子|g|38|A|12|15|T|
|山药|g|16|A|15|30|T|
|麸炒薏苡仁|g|10|A|20|30|T|
|炒酸枣仁|g|120|A|15|15|T|
|制远志|g|80|A|6|10|T|
|葛根|g|10|A|15|20|T|
|桂枝|g|9|A|9|10|T|
|蜜麻黄|g|12|A|6|9|T|A
|防风|g|35|A|9|10|T|
|荆芥|g|15|A|9|10|T|
|姜厚朴|g|20|A|9|10|T|
|麸炒枳壳|g|15|A|9|10|T|
|木香|g|25|A|6|6|T|
|砂仁|g|180|A|6|6|T|
|黄连|g|150|A|3|5|T|
|大枣|g|8|A|10|15|T|
|生姜|g|6|A|6|10|T|
|西洋参|g|1200|self|3|6|T|A
|三七粉|g|600|B|3|9|T|A
|阿胶|g|1500|self|6|9|T|A
|红参片|g|900|self|3|9|T|A
|煅龙骨|g|6|A|20|30|T|
|煅牡蛎|g|4|A|20|30|T|
"""

_FLAG_NAMES = frozenset("FMCAIVJLPX")


def _milli(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 1000 + int((frac + "000")[:3])


def _tail(name: str, digits: int) -> str:
    """Stable digits for the specification/manufacturer part of a code."""
    value = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return f"{value % 10**digits:0{digits}d}"


_FORM = {"片": "A001", "粒": "A002", "袋": "A003", "丸": "A004", "支": "B001", "瓶": "B002"}


def _parse() -> tuple[CatalogueItem, ...]:
    items: list[CatalogueItem] = []
    kind = ItemKind.WESTERN_DRUG
    seen_codes: set[str] = set()
    generic_seq: dict[str, int] = {}
    for row in _TABLE.strip().splitlines():
        if row.startswith("## "):
            kind = ItemKind(row.split()[1])
            continue
        klass, name, unit, price, cls, usual, most, depts, flags = row.split("|")
        if not set(flags) <= _FLAG_NAMES:
            raise ValueError(f"unknown flag in {row!r}")
        if kind.is_drug and kind is not ItemKind.HERBAL:
            prefix = "X" if kind is ItemKind.WESTERN_DRUG else "Z"
            seq = generic_seq[klass] = generic_seq.get(klass, 0) + 1
            form = _FORM.get(unit, "C001")
            code = f"{prefix}{klass:X<5}B{seq:03d}{form}{_tail(name, 9)}"
        elif kind is ItemKind.HERBAL:
            seq = generic_seq["T"] = generic_seq.get("T", 0) + 1
            code = f"T{seq:04d}{_tail(name, 5)}"
        elif kind is ItemKind.MATERIAL:
            seq = generic_seq["C"] = generic_seq.get("C", 0) + 1
            code = f"C{klass}{seq:03d}{_tail(name, 10)}"
        else:
            sub = 0
            code = f"F00{klass}{sub:04d}"
            while code in seen_codes:
                sub += 1
                code = f"F00{klass}{sub:04d}"
        if code in seen_codes or not CATALOGUE_CODE.fullmatch(code):
            raise ValueError(f"bad or duplicate catalogue code {code!r} for {name}")
        seen_codes.add(code)
        usual_milli, max_milli = _milli(usual), _milli(most)
        if "P" in flags:
            outpatient = 3000
        elif kind is ItemKind.HERBAL:
            outpatient = max_milli * 14
        elif kind.is_drug and "J" not in flags:
            outpatient = max_milli * (30 if "L" in flags else 7)
        elif name == "中药代煎":
            outpatient = 14000
        else:
            outpatient = max_milli
        items.append(
            CatalogueItem(
                code=code,
                name=name,
                kind=kind,
                item_class=ItemClass(cls),
                unit=unit,
                unit_price=int(price),
                usual_daily_milli=usual_milli,
                max_daily_milli=max_milli,
                max_outpatient_milli=outpatient,
                departments=None
                if depts == "*"
                else frozenset(DEPARTMENTS[d] for d in depts)
                | (frozenset({"全科医学科"}) if "N" in depts else frozenset()),
                sex="F" if "F" in flags else "M" if "M" in flags else None,
                min_age=18 if "A" in flags else None,
                max_age=14 if "C" in flags else None,
                inpatient_only="I" in flags,
                outpatient_only="V" in flags,
                injection="J" in flags,
                long_prescription="L" in flags,
                high_cost="X" in flags,
            )
        )
    return tuple(items)


ITEMS: tuple[CatalogueItem, ...] = _parse()
CATALOGUE: Mapping[str, CatalogueItem] = MappingProxyType({item.code: item for item in ITEMS})
BY_NAME: Mapping[str, CatalogueItem] = MappingProxyType({item.name: item for item in ITEMS})
assert len(BY_NAME) == len(ITEMS), "catalogue names must be unique"

# Lab panels (检验套餐): one order, one line per test, as Chinese itemised bills list them.
LAB_PANELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "血常规": ("血细胞分析(五分类)", "C反应蛋白测定(CRP)"),
        "尿常规": ("尿液分析(尿常规)",),
        "粪常规": ("粪便常规", "粪便隐血试验"),
        "肝功能": (
            "血清总蛋白测定",
            "血清白蛋白测定",
            "丙氨酸氨基转移酶测定",
            "天门冬氨酸氨基转移酶测定",
            "γ-谷氨酰基转移酶测定",
            "碱性磷酸酶测定",
            "血清总胆红素测定",
            "血清直接胆红素测定",
            "血清总胆汁酸测定",
        ),
        "肾功能": ("尿素测定", "肌酐测定", "尿酸测定", "胱抑素C测定"),
        "血糖": ("葡萄糖测定",),
        "糖化血红蛋白": ("糖化血红蛋白测定",),
        "血脂": (
            "血清总胆固醇测定",
            "血清甘油三酯测定",
            "高密度脂蛋白胆固醇测定",
            "低密度脂蛋白胆固醇测定",
        ),
        "电解质": ("钾测定", "钠测定", "氯测定", "钙测定"),
        "凝血功能": (
            "凝血酶原时间测定(PT)",
            "活化部分凝血活酶时间测定(APTT)",
            "纤维蛋白原测定",
            "D-二聚体测定",
        ),
        "乙肝两对半": (
            "乙型肝炎表面抗原测定",
            "乙型肝炎表面抗体测定",
            "乙型肝炎e抗原测定",
            "乙型肝炎e抗体测定",
            "乙型肝炎核心抗体测定",
        ),
        "术前感染筛查": (
            "乙型肝炎表面抗原测定",
            "丙型肝炎抗体测定",
            "梅毒螺旋体特异抗体测定",
            "人免疫缺陷病毒抗体测定",
        ),
        "心肌标志物": ("肌钙蛋白I测定", "肌酸激酶同工酶测定", "N端脑钠肽前体测定"),
        "甲状腺功能": ("游离三碘甲状原氨酸测定", "游离甲状腺素测定", "促甲状腺激素测定"),
        "肿瘤标志物": ("癌胚抗原测定", "甲胎蛋白测定"),
        "血沉": ("红细胞沉降率测定",),
        "降钙素原": ("降钙素原测定",),
        "血型": ("血型鉴定(ABO+Rh)",),
    }
)


@dataclass(frozen=True, slots=True)
class SurgeryPackage:
    """An operation as billed: the procedure, its anaesthesia, the diagnoses it treats, the
    consumables it uses (name, quantity) and the drugs given in theatre."""

    department: str
    procedure: str
    anaesthesia: str
    diagnoses: tuple[str, ...]
    materials: tuple[tuple[str, int], ...]
    drugs: tuple[str, ...]


_GENERAL = ("丙泊酚注射液(20ml:0.2g)", "枸橼酸芬太尼注射液(0.1mg)", "罗库溴铵注射液(50mg)")
_SPINAL = ("盐酸罗哌卡因注射液(75mg)",)
_LOCAL = ("盐酸利多卡因注射液(0.1g:5ml)",)
_SURGERY_ROWS = (
    ("外科", "阑尾切除术(腹腔镜)", "全身麻醉", ("K35.8",), (("腹腔镜穿刺器", 3),)),
    ("外科", "腹腔镜胆囊切除术", "全身麻醉", ("K80.2", "K81.1"), (("腹腔镜穿刺器", 4),)),
    ("外科", "腹股沟疝修补术", "椎管内麻醉", ("K40.9",), (("疝修补补片", 1),)),
    ("外科", "混合痔切除术", "椎管内麻醉", ("K64.2",), ()),
    ("外科", "经尿道前列腺电切术", "椎管内麻醉", ("N40",), (("一次性使用导尿包", 1),)),
    ("外科", "甲状腺部分切除术", "全身麻醉", ("E04.1", "D34"), (("负压引流器", 1),)),
    ("妇产科", "单胎顺产接生", "局部浸润麻醉", ("O80.0",), (("一次性使用产包", 1),)),
    ("妇产科", "子宫下段剖宫产术", "椎管内麻醉", ("O82.0",), (("一次性使用产包", 1),)),
    ("妇产科", "腹腔镜子宫肌瘤剔除术", "全身麻醉", ("D25.9",), (("腹腔镜穿刺器", 3),)),
    ("妇产科", "诊断性刮宫术", "局部浸润麻醉", ("N92.0", "N84.0"), ()),
    (
        "骨科",
        "人工髋关节置换术",
        "椎管内麻醉",
        ("S72.0", "M16.9"),
        (("人工髋关节假体(陶瓷-聚乙烯)", 1), ("负压引流器", 1)),
    ),
    (
        "骨科",
        "桡骨骨折切开复位内固定术",
        "全身麻醉",
        ("S52.5",),
        (("锁定接骨板", 1), ("锁定螺钉", 6)),
    ),
    ("骨科", "腰椎间盘突出摘除术", "全身麻醉", ("M51.2",), (("负压引流器", 1),)),
    ("骨科", "膝关节镜检查清理术", "椎管内麻醉", ("M17.9", "M23.2"), ()),
    (
        "眼科",
        "白内障超声乳化摘除+人工晶体植入术",
        "局部浸润麻醉",
        ("H25.9",),
        (("人工晶体(非球面折叠)", 1), ("眼科粘弹剂", 1)),
    ),
    ("眼科", "翼状胬肉切除术", "局部浸润麻醉", ("H11.0",), ()),
    ("耳鼻咽喉科", "扁桃体切除术", "全身麻醉", ("J35.0",), ()),
    ("耳鼻咽喉科", "鼻内镜下鼻窦开放术", "全身麻醉", ("J32.9",), ()),
)
_ANAESTHESIA_DRUGS = {"全身麻醉": _GENERAL, "椎管内麻醉": _SPINAL, "局部浸润麻醉": _LOCAL}
SURGERY_PACKAGES: tuple[SurgeryPackage, ...] = tuple(
    SurgeryPackage(
        dept,
        procedure,
        anaesthesia,
        diagnoses,
        (*materials, ("可吸收缝合线", 2)) if anaesthesia != "局部浸润麻醉" else materials,
        _ANAESTHESIA_DRUGS[anaesthesia],
    )
    for dept, procedure, anaesthesia, diagnoses, materials in _SURGERY_ROWS
)

# Common ICD-10 diagnoses by department (outpatient and medical inpatient), with a sex when the
# diagnosis implies one.
DIAGNOSES: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {
        "内科": (
            ("J06.9", ""),
            ("J18.9", ""),
            ("I10", ""),
            ("E11.9", ""),
            ("I25.1", ""),
            ("J44.1", ""),
            ("K29.7", ""),
            ("N39.0", ""),
            ("I50.9", ""),
            ("K21.0", ""),
        ),
        "神经内科": (("I63.9", ""), ("G45.9", ""), ("G43.9", ""), ("G40.9", ""), ("G20", "")),
        "外科": (
            ("K35.8", ""),
            ("K80.2", ""),
            ("K40.9", ""),
            ("L03.1", ""),
            ("S01.8", ""),
            ("D17.9", ""),
            ("N40", "M"),
            ("E04.1", ""),
        ),
        "骨科": (
            ("S72.0", ""),
            ("S52.5", ""),
            ("M51.2", ""),
            ("M17.9", ""),
            ("M47.8", ""),
            ("M54.5", ""),
            ("S93.4", ""),
        ),
        "妇产科": (
            ("Z34.9", "F"),
            ("O20.0", "F"),
            ("N76.0", "F"),
            ("N92.0", "F"),
            ("N73.9", "F"),
            ("D25.9", "F"),
            ("N95.1", "F"),
        ),
        "儿科": (
            ("J06.9", ""),
            ("J20.9", ""),
            ("J18.0", ""),
            ("A09.0", ""),
            ("B08.4", ""),
            ("J45.9", ""),
            ("R50.9", ""),
        ),
        "眼科": (
            ("H10.9", ""),
            ("H25.9", ""),
            ("H40.9", ""),
            ("H52.1", ""),
            ("H16.0", ""),
            ("H11.0", ""),
        ),
        "耳鼻咽喉科": (
            ("J01.9", ""),
            ("J30.4", ""),
            ("H66.9", ""),
            ("J35.0", ""),
            ("J03.9", ""),
            ("J32.9", ""),
        ),
        "口腔科": (("K02.9", ""), ("K04.0", ""), ("K05.1", ""), ("K01.1", ""), ("K12.0", "")),
        "皮肤科": (
            ("L20.9", ""),
            ("L30.9", ""),
            ("B35.4", ""),
            ("L50.0", ""),
            ("L70.0", ""),
            ("B02.9", ""),
        ),
        "中医科": (
            ("M54.5", ""),
            ("R51", ""),
            ("K59.0", ""),
            ("G47.0", ""),
            ("J06.9", ""),
            ("I69.3", ""),
        ),
        "康复医学科": (("I69.3", ""), ("M54.5", ""), ("M75.0", ""), ("S72.0", ""), ("G81.9", "")),
        "急诊科": (("S06.0", ""), ("R10.4", ""), ("T78.4", ""), ("J06.9", ""), ("S61.0", "")),
        "全科医学科": (
            ("J06.9", ""),
            ("I10", ""),
            ("E11.9", ""),
            ("K29.7", ""),
            ("M54.5", ""),
            ("R05", ""),
        ),
    }
)
